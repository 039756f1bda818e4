import { add, div, mul, neg, sub, sum } from '../../graph/ops/elementwise';
import { matmul } from '../../graph/ops/matmul';
import { reduceSum } from '../../graph/ops/reduce';
import { detach, expand, reshape } from '../../graph/ops/shape';
import { transpose } from '../../graph/ops/transpose';
import { gradcheck } from '../helpers/gradcheck';

describe('gradient rules of the core operators match finite differences (float64)', () => {
  test('Add/Sub/Mul/Div with broadcasting', async () => {
    await gradcheck([{ shape: [2, 3, 4] }, { shape: [3, 1] }], (a, b) => add(a, b));
    await gradcheck([{ shape: [2, 3, 4] }, { shape: [4] }], (a, b) => sub(a, b));
    await gradcheck([{ shape: [1, 3, 4] }, { shape: [2, 1, 4] }], (a, b) => mul(a, b));
    await gradcheck([{ shape: [2, 3] }, { shape: [3], values: [1.5, -2, 3] }], (a, b) => div(a, b));
  });
  test('Neg, Sum, Expand, Reshape, Transpose, ReduceSum', async () => {
    await gradcheck([{ shape: [2, 3] }], (a) => neg(a));
    await gradcheck([{ shape: [2, 3] }, { shape: [3] }, { shape: [1, 1] }], (a, b, c) => sum([a, b, c]));
    await gradcheck([{ shape: [3, 1] }], (a) => expand(a, [2, 3, 4]));
    await gradcheck([{ shape: [2, 6] }], (a) => reshape(a, [3, -1]));
    await gradcheck([{ shape: [2, 3, 4] }], (a) => transpose(a, [2, 0, 1]));
    await gradcheck([{ shape: [2, 3, 4] }], (a) => reduceSum(a, [0, 2]));
    await gradcheck([{ shape: [2, 3, 4] }], (a) => reduceSum(a, [-1], true));
  });
  test('MatMul with batch broadcasting', async () => {
    await gradcheck([{ shape: [2, 3, 4] }, { shape: [4, 5] }], (a, b) => matmul(a, b));
    await gradcheck([{ shape: [3, 4] }, { shape: [2, 4, 5] }], (a, b) => matmul(a, b));
  });
  test('fan-out accumulates and detach stops the gradient', async () => {
    await gradcheck([{ shape: [3] }], (a) => mul(add(a, a), a));
    const r = await gradcheck([{ shape: [3] }, { shape: [3] }], (a, b) => add(mul(detach(mul(a, b)), 0), mul(a, b)));
    expect(r.checked).toBe(6);
  });
});
