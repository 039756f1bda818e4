import { Graph, Tensor } from '../core/graph';

/** A tensor, or a plain number that becomes a scalar constant of the other operand's dtype. */
export type Operand = Tensor | number;

export function graphOf(...operands: Operand[]): Graph {
  const t = operands.find((o): o is Tensor => o instanceof Tensor);
  if (!t) throw new Error('an operation needs at least one tensor operand');
  return t.graph;
}

export function asTensor(operand: Operand, like: Tensor): Tensor {
  return operand instanceof Tensor ? operand : like.graph.scalar(operand, like.dtype);
}

/** Both operands as tensors; numbers take the dtype of the tensor beside them. */
export function asTensors(a: Operand, b: Operand): [Tensor, Tensor] {
  const like = (a instanceof Tensor ? a : b) as Tensor;
  if (!(like instanceof Tensor)) throw new Error('an operation needs at least one tensor operand');
  return [asTensor(a, like), asTensor(b, like)];
}
