import { Tensor } from '../core/graph';
import { ShapeError, broadcastShapes, formatShape } from '../core/shape';
import { GradientTable } from '../autodiff/rule';
import { unbroadcast } from './reduce';
import { transpose } from './transpose';

/** Batched matrix product with NumPy semantics for rank >= 2 operands. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.rank < 2 || b.rank < 2) throw new ShapeError(`MatMul: operands must have rank >= 2, got ${formatShape(a.shape)} and ${formatShape(b.shape)}`);
  const [m, k] = a.shape.slice(-2);
  const [k2, n] = b.shape.slice(-2);
  if (k !== k2) throw new ShapeError(`MatMul: inner dimensions differ in ${formatShape(a.shape)} x ${formatShape(b.shape)}`);
  const batch = broadcastShapes('MatMul', [a.shape.slice(0, -2), b.shape.slice(0, -2)]);
  return a.graph.addNode('MatMul', [a, b], {}, [{ dtype: a.dtype, shape: [...batch, m, n] }])[0];
}

/** Swaps the last two axes. */
export function transposeLast2(x: Tensor): Tensor {
  const perm = x.shape.map((_, i) => i);
  perm[x.rank - 2] = x.rank - 1;
  perm[x.rank - 1] = x.rank - 2;
  return transpose(x, perm);
}

export const matmulGradients: GradientTable = {
  MatMul: ({ inputs: [a, b], grad, needs }) => [
    needs[0] ? unbroadcast(matmul(grad, transposeLast2(b!)), a!.shape) : null,
    needs[1] ? unbroadcast(matmul(transposeLast2(a!), grad), b!.shape) : null,
  ],
};
