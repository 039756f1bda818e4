import { Graph } from '../../graph/core/graph';
import { cast, equal, greater, less, where } from '../../graph/ops/compare';
import { mul } from '../../graph/ops/elementwise';
import { exp } from '../../graph/ops/math';
import { gradcheck } from '../helpers/gradcheck';
import { evaluate } from './ops-eval';

describe('comparisons, Where and Cast', () => {
  const a = { shape: [2, 3], values: [1, 2, 3, 4, 5, 6] };
  const b = { shape: [3], values: [2, 2, 1] };

  test('Equal/Greater/Less broadcast and give bool', async () => {
    expect((await evaluate([a, b], (x, y) => cast(equal(x, y), 'float64'))).values).toEqual([0, 1, 0, 0, 0, 0]);
    expect((await evaluate([a, b], (x, y) => cast(greater(x, y), 'float64'))).values).toEqual([0, 0, 1, 1, 1, 1]);
    expect((await evaluate([a, b], (x, y) => cast(less(x, y), 'float64'))).values).toEqual([1, 0, 0, 0, 0, 0]);
    const g = new Graph();
    expect(greater(g.input('p', 'float64', [2, 3]), 0).dtype).toBe('bool');
  });

  test('Where: gradient to both branches masked and broadcast back, none to the condition', async () => {
    const c = { shape: [3], values: [-1, 1, 1] };
    const y = await evaluate([c, a, { shape: [1], values: [-1] }], (t, x, z) => where(greater(t, 0), x, z));
    expect(y.values).toEqual([-1, 2, 3, -1, 5, 6]);
    const r = await gradcheck([{ shape: [2, 3], constant: true }, { shape: [2, 3] }, { shape: [3] }], (t, x, z) => where(greater(t, 0), x, z));
    expect(r.checked).toBe(9);
    await gradcheck([{ shape: [2, 3], constant: true }, { shape: [2, 1] }], (t, x) => where(less(t, 0), exp(x), 0));
  });

  test('Cast: float-to-float passes the gradient back; through integers nothing flows', async () => {
    // float64 -> float32 -> float64 of a linear function: the only error is float32 rounding of x (|x| < 4,
    // so below 2.4e-7 absolute) over 2 * eps = 2e-2, i.e. about 1e-5 relative.
    await gradcheck([{ shape: [2, 3] }], (x) => mul(cast(cast(x, 'float32'), 'float64'), 3), { eps: 1e-2, rtol: 1e-4 });
    // float32 input, float64 computation: the perturbed inputs are rounded to float32 (about 1e-5 of 2 * eps)
    // and the central difference of exp is off by eps^2 / 6 = 2e-5 relative.
    await gradcheck([{ shape: [2, 3], dtype: 'float32' }], (x) => exp(cast(x, 'float64')), { eps: 1e-2, rtol: 1e-3 });
    // x * trunc(x): trunc is piecewise constant, so d/dx = trunc(x); a rule letting gradient through the int64
    // cast would add x here and fail the check.
    const values = [0.3, 1.4, -2.6, 3.2, -0.8, 2.7];
    await gradcheck([{ shape: [6], values }], (x) => mul(x, cast(cast(x, 'int64'), 'float64')));
    expect((await evaluate([{ shape: [6], values }], (x) => cast(cast(x, 'int64'), 'float64'))).values).toEqual([0, 1, -2, 3, 0, 2]);
  });

  test('errors name the op and the operands', () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [2, 3]);
    expect(() => where(x, x, x)).toThrow(/Where: the condition must be bool, got x: float64\[2, 3\]/);
    expect(() => where(greater(x, 0), x, g.input('y', 'float64', [4]))).toThrow(/Where: shapes \[2, 3\] and \[2, 3\] and \[4\] do not broadcast/);
    expect(() => equal(x, g.input('i', 'int64', [3]))).toThrow(/Equal: dtypes differ/);
    expect(cast(x, 'float64')).toBe(x);
  });
});
