import { Graph } from '../../graph/core/graph';
import { gradients } from '../../graph/autodiff/backward';
import { mul } from '../../graph/ops/elementwise';
import { matmul, transposeLast2 } from '../../graph/ops/matmul';
import { reduceSum } from '../../graph/ops/reduce';
import { reshape } from '../../graph/ops/shape';
import { softmax } from '../../graph/ops/softmax';
import { gradcheck } from '../helpers/gradcheck';

describe('Softmax gradient inside attention', () => {
  test('softmax(q k^T) v: gradients of q, k and v match finite differences', async () => {
    await gradcheck([{ shape: [2, 3, 5, 4] }, { shape: [2, 3, 5, 4] }, { shape: [2, 3, 5, 2] }], (q, k, v) =>
      matmul(softmax(matmul(q, transposeLast2(k))), v),
    );
  });

  test('the row sums come from the [.., n, d] output, not from the [.., n, n] probabilities', () => {
    const g = new Graph();
    const s = g.input('s', 'float64', [2, 6, 6]);
    const v = g.input('v', 'float64', [2, 6, 3]);
    const loss = reduceSum(matmul(softmax(s), v), [0, 1, 2]);
    const before = g.nodes.length;
    gradients(loss, [s]);
    const reductions = g.nodes.slice(before).filter((n) => n.opType === 'ReduceSum');
    expect(reductions.some((n) => n.inputs[0]!.shape.join() === '2,6,3')).toBe(true);
    expect(reductions.some((n) => n.inputs[0]!.shape.join() === '2,6,6')).toBe(false);
  });

  test('probabilities reshaped before the product with v (as in the Swin window attention)', async () => {
    await gradcheck([{ shape: [2, 3, 5, 5] }, { shape: [6, 5, 2] }], (s, v) => matmul(reshape(softmax(s), [6, 5, 5]), v));
    const g = new Graph();
    const s = g.input('s', 'float64', [2, 3, 5, 5]);
    const v = g.input('v', 'float64', [6, 5, 2]);
    const loss = reduceSum(matmul(reshape(softmax(s), [6, 5, 5]), v), [0, 1, 2]);
    const before = g.nodes.length;
    gradients(loss, [s]);
    const reductions = g.nodes.slice(before).filter((n) => n.opType === 'ReduceSum');
    expect(reductions.map((n) => n.inputs[0]!.shape.join())).toEqual(['6,5,2']);
  });

  test('a probability used elsewhere as well falls back to the general rule', async () => {
    await gradcheck([{ shape: [2, 4, 4] }, { shape: [2, 4, 3] }], (s, v) => {
      const p = softmax(s);
      return mul(matmul(p, v), reduceSum(p, [2], true));
    });
  });
});
