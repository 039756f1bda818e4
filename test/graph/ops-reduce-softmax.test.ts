import { Graph } from '../../graph/core/graph';
import { ShapeError } from '../../graph/core/shape';
import { reduceMax, reduceMean, reduceSum, sumLeading, unbroadcast } from '../../graph/ops/reduce';
import { softmax } from '../../graph/ops/softmax';
import { gradcheck } from '../helpers/gradcheck';
import { evaluate, iota } from './ops-eval';

describe('Softmax, ReduceMean and ReduceMax', () => {
  test('Softmax along any axis (opset-13 semantics: other axes are independent)', async () => {
    const y = await evaluate([{ shape: [2, 2], values: [0, Math.log(3), 1, 0] }], (x) => softmax(x, 0));
    [1 / (1 + Math.E), 0.75, Math.E / (1 + Math.E), 0.25].forEach((v, i) => expect(y.values[i]).toBeCloseTo(v, 12));
    await gradcheck([{ shape: [2, 3, 4] }], (x) => softmax(x));
    await gradcheck([{ shape: [2, 3, 4] }], (x) => softmax(x, 1));
  });

  test('ReduceMean over some axes, with and without keepDims', async () => {
    const y = await evaluate([{ shape: [2, 3], values: iota(6) }], (x) => reduceMean(x, [1]));
    expect(y.values).toEqual([1, 4]);
    expect(y.shape).toEqual([2]);
    await gradcheck([{ shape: [2, 3, 4] }], (x) => reduceMean(x, [0, 2]));
    await gradcheck([{ shape: [2, 3, 4] }], (x) => reduceMean(x, [-1], true));
  });

  test('ReduceMax: gradient to the maximum; tied maxima share it equally', async () => {
    await gradcheck([{ shape: [2, 3, 4] }], (x) => reduceMax(x, [1]));
    await gradcheck([{ shape: [2, 3, 4] }], (x) => reduceMax(x, [0, 2], true));
    // Row 0 has a two-way tie: central differences measure 1/2 for each of the tied entries.
    const tied = { shape: [2, 3], values: [1, 3, 3, 2, 0, -1] };
    expect((await evaluate([tied], (x) => reduceMax(x, [1]))).values).toEqual([3, 2]);
    await gradcheck([tied], (x) => reduceMax(x, [1]));
  });

  test('sums over leading axes (a MatMul with ones) equal ReduceSum, in float64 and float32, and feed unbroadcast', async () => {
    const x = { shape: [2, 3, 4], values: iota(24).map((v) => v * v - 7) };
    for (const dtype of ['float64', 'float32'] as const) {
      for (const count of [1, 2, 3]) {
        const axes = iota(count);
        const theirs = await evaluate([x], (t) => reduceSum(t, axes), dtype);
        expect(await evaluate([x], (t) => sumLeading(t, count), dtype)).toEqual(theirs);
      }
    }
    expect(await evaluate([x], (t) => sumLeading(t, 0))).toEqual(await evaluate([x], (t) => t));
    expect((await evaluate([x], (t) => unbroadcast(t, [1, 3, 1]))).values).toEqual([692, 1300, 2164]);
    expect((await evaluate([x], (t) => unbroadcast(t, [1, 4]))).values).toEqual([838, 964, 1102, 1252]);
  });

  test('errors name the op and the shapes', () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [2, 3]);
    expect(() => reduceMean(x, [2])).toThrow(new ShapeError('ReduceMean: axis 2 out of range for rank 2'));
    expect(() => reduceMax(x, [])).toThrow(/ReduceMax: no axes given for \[2, 3\]/);
    expect(() => reduceSum(x, [])).toThrow(/ReduceSum: no axes given/);
    expect(() => softmax(x, -3)).toThrow(/Softmax: axis -3 out of range for rank 2/);
  });
});
