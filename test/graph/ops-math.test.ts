import { Graph } from '../../graph/core/graph';
import { ShapeError } from '../../graph/core/shape';
import {
  abs, clip, erf, exp, leakyRelu, log, maximum, minimum, pow, reciprocal, relu, sigmoid, sqrt, tanh,
} from '../../graph/ops/math';
import { gradcheck } from '../helpers/gradcheck';
import { evaluate, uniformValues } from './ops-eval';

describe('elementwise math: forward values and gradients vs finite differences (float64)', () => {
  test('unary functions', async () => {
    const positive = { shape: [2, 3], values: uniformValues(6, 0.5, 2) };
    await gradcheck([positive], (x) => sqrt(x));
    await gradcheck([positive], (x) => log(x));
    await gradcheck([positive], (x) => reciprocal(x));
    await gradcheck([{ shape: [2, 3] }], (x) => exp(x));
    await gradcheck([{ shape: [2, 3] }], (x) => abs(x));
    await gradcheck([{ shape: [2, 3] }], (x) => relu(x));
    await gradcheck([{ shape: [2, 3] }], (x) => sigmoid(x));
    await gradcheck([{ shape: [2, 3] }], (x) => tanh(x));
  });

  test('LeakyRelu', async () => {
    const y = await evaluate([{ shape: [4], values: [-2, -0.5, 0, 3] }], (x) => leakyRelu(x, 0.25));
    expect(y.values).toEqual([-0.5, -0.125, 0, 3]);
    await gradcheck([{ shape: [2, 3] }], (x) => leakyRelu(x, 0.2));
  });

  test('Pow with a constant exponent and with a tensor exponent', async () => {
    const positive = { shape: [2, 3], values: uniformValues(6, 0.5, 2) };
    await gradcheck([{ shape: [2, 3] }], (x) => pow(x, 2));
    await gradcheck([{ shape: [2, 3] }], (x) => pow(x, 3));
    await gradcheck([positive], (x) => pow(x, -0.5));
    await gradcheck([positive, { shape: [3] }], (x, p) => pow(x, p));
    const y = await evaluate([{ shape: [3], values: [4, 9, 2] }], (x) => pow(x, 0.5));
    expect(y.values[0]).toBeCloseTo(2, 12);
    expect(y.values[1]).toBeCloseTo(3, 12);
  });

  test('Max/Min with broadcasting; on ties the gradient is split equally (what central differences measure)', async () => {
    await gradcheck([{ shape: [2, 3] }, { shape: [3] }], (a, b) => maximum(a, b));
    await gradcheck([{ shape: [2, 1] }, { shape: [2, 3] }], (a, b) => minimum(a, b));
    const a = { shape: [4], values: [1, 2, 3, -1] };
    const b = { shape: [4], values: [1, 0, 5, -1] };
    await gradcheck([a, b], (x, y) => maximum(x, y));
    await gradcheck([a, b], (x, y) => minimum(x, y));
    expect((await evaluate([a, b], (x, y) => maximum(x, y))).values).toEqual([1, 2, 5, -1]);
    expect((await evaluate([a], (x) => minimum(x, 0.5))).values).toEqual([0.5, 0.5, 0.5, -1]);
  });

  test('Clip with both, one or tensor bounds', async () => {
    const x = { shape: [2, 4], values: [-2, -0.7, -0.2, 0.1, 0.4, 0.9, 1.6, -1.3] };
    expect((await evaluate([x], (t) => clip(t, -0.5, 0.5))).values).toEqual([-0.5, -0.5, -0.2, 0.1, 0.4, 0.5, 0.5, -0.5]);
    expect((await evaluate([x], (t) => clip(t, undefined, 0))).values).toEqual([-2, -0.7, -0.2, 0, 0, 0, 0, -1.3]);
    await gradcheck([x], (t) => clip(t, -0.5, 0.5));
    await gradcheck([x], (t) => clip(t, 0));
    await gradcheck([x], (t) => clip(t, undefined, 0));
    const r = await gradcheck([x, { shape: [], values: [-0.5] }, { shape: [], values: [0.5] }], (t, lo, hi) => clip(t, lo, hi));
    expect(r.checked).toBe(10);
  });

  test('shape and argument errors name the op and the shapes', () => {
    const g = new Graph();
    const a = g.input('a', 'float64', [2, 3]);
    const b = g.input('b', 'float64', [4]);
    expect(() => maximum(a, b)).toThrow(new ShapeError('Max: shapes [2, 3] and [4] do not broadcast'));
    expect(() => pow(a, b)).toThrow(/Pow: shapes \[2, 3\] and \[4\]/);
    expect(() => exp(g.input('i', 'int64', [2]))).toThrow(/Exp: expected a floating-point tensor, got i: int64\[2\]/);
    expect(() => clip(a, 1, -1)).toThrow(/Clip: min 1 is above max -1/);
    expect(() => clip(a, b)).toThrow(/Clip: bounds must be float64 scalars, got b: float64\[4\]/);
    expect(() => minimum(a, g.input('f', 'float32', [3]))).toThrow(/Min: dtypes differ/);
  });
});

describe('Erf (float32 only on the ONNX Runtime CPU provider)', () => {
  test('forward values and gradient', async () => {
    const y = await evaluate([{ shape: [3], values: [0, 0.5, -1] }], (x) => erf(x), 'float32');
    expect(y.values[0]).toBe(0);
    expect(y.values[1]).toBeCloseTo(0.5204998778, 6);
    expect(y.values[2]).toBeCloseTo(-0.8427007929, 6);
    // Central differences with eps = 1e-2 on a float32 loss: truncation error eps^2/6 * max|erf'''| (2.26) is
    // about 4e-5, and float32 rounding of a loss of ~10 is about 1e-6 / (2 eps) = 5e-5, against gradients of
    // order 0.1-1; so 2e-3 relative (with atol 1e-3) is a real check that a wrong rule (e.g. a lost factor)
    // cannot pass.
    const r = await gradcheck([{ shape: [3, 4] }], (x) => erf(x), { dtype: 'float32', eps: 1e-2, rtol: 2e-3, atol: 1e-3 });
    expect(r.worst).toBeLessThan(2e-3);
  });
});
