import { Graph, Tensor } from '../../graph/core/graph';
import { AutodiffError, gradients } from '../../graph/autodiff/backward';
import { add, mul } from '../../graph/ops/elementwise';
import { exp, tanh } from '../../graph/ops/math';
import { reduceSum } from '../../graph/ops/reduce';
import { detach } from '../../graph/ops/shape';
import { softmax } from '../../graph/ops/softmax';

/** Builds loss = sum(p * other(p, q)) and returns how many nodes gradients(loss, [p]) emits. */
function gradientNodeCount(other: (p: Tensor, q: Tensor) => Tensor): number {
  const g = new Graph();
  const p = g.parameter('p', 'float64', [2, 3], { kind: 'zeros' });
  const q = g.input('q', 'float64', [2, 3]);
  const loss = reduceSum(mul(p, other(p, q)), [0, 1]);
  const before = g.nodes.length;
  gradients(loss, [p]);
  return g.nodes.length - before;
}

describe('autodiff walk with the full rule table', () => {
  test('an operator without a gradient rule on the path to the loss is a clear AutodiffError', () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [3]);
    const [y] = g.addNode('MadeUpOp', [x], {}, [{ dtype: 'float64', shape: [3] }]);
    expect(() => gradients(reduceSum(y, [0]), [x])).toThrow(AutodiffError);
    expect(() => gradients(reduceSum(y, [0]), [x])).toThrow(/no gradient rule for MadeUpOp \(node MadeUpOp/);
  });

  test('an operator without a rule off the gradient path is fine', () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [3]);
    const c = g.input('c', 'float64', [3]);
    const [y] = g.addNode('MadeUpOp', [c], {}, [{ dtype: 'float64', shape: [3] }]);
    expect(gradients(reduceSum(mul(x, y), [0]), [x]).get(x)!.shape).toEqual([3]);
  });

  test('branches that do not need gradients emit no gradient nodes', () => {
    const plain = gradientNodeCount((_, q) => q);
    expect(plain).toBeGreaterThan(0);
    // A longer branch from an input that is not differentiated, or from p through detach, adds nothing.
    expect(gradientNodeCount((_, q) => softmax(tanh(exp(q))))).toBe(plain);
    expect(gradientNodeCount((p) => detach(softmax(exp(p))))).toBe(plain);
    // A differentiated branch does add nodes (so the count above measures something).
    expect(gradientNodeCount((p, q) => add(exp(p), q))).toBeGreaterThan(plain);
  });
});
