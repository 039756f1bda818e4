import { Graph, Tensor } from '../core/graph';
import { DType } from '../core/dtype';
import { Shape, broadcastShapes } from '../core/shape';
import { GradientTable } from '../autodiff/rule';
import { int64s } from './int64';
import { Operand, asTensors } from './operand';
import { unbroadcast } from './reduce';

function binary(opType: string, a: Operand, b: Operand): Tensor {
  const [x, y] = asTensors(a, b);
  if (x.dtype !== y.dtype) throw new Error(`${opType}: dtypes ${x.dtype} and ${y.dtype} differ`);
  const shape = broadcastShapes(opType, [x.shape, y.shape]);
  return x.graph.addNode(opType, [x, y], {}, [{ dtype: x.dtype, shape }])[0];
}

export const add = (a: Operand, b: Operand): Tensor => binary('Add', a, b);
export const sub = (a: Operand, b: Operand): Tensor => binary('Sub', a, b);
export const mul = (a: Operand, b: Operand): Tensor => binary('Mul', a, b);
export const div = (a: Operand, b: Operand): Tensor => binary('Div', a, b);

export function neg(x: Tensor): Tensor {
  return x.graph.addNode('Neg', [x], {}, [{ dtype: x.dtype, shape: x.shape }])[0];
}

/** Elementwise sum of several tensors of one dtype (broadcasting), as ONNX Sum. */
export function sum(terms: readonly Tensor[]): Tensor {
  if (terms.length === 1) return terms[0];
  const shape = broadcastShapes('Sum', terms.map((t) => t.shape));
  return terms[0].graph.addNode('Sum', terms, {}, [{ dtype: terms[0].dtype, shape }])[0];
}

/** A tensor of `dtype` and `shape` filled with `value`, as a broadcast scalar (no large constant). */
export function filled(g: Graph, dtype: DType, shape: Shape, value: number): Tensor {
  const scalar = g.scalar(value, dtype);
  if (shape.length === 0) return scalar;
  return g.addNode('Expand', [scalar, int64s(g, shape, 'shape')], {}, [{ dtype, shape }])[0];
}

/** A tensor of `like`'s dtype and shape filled with `value`. */
export const filledLike = (like: Tensor, value: number): Tensor => filled(like.graph, like.dtype, like.shape, value);

export const zerosLike = (like: Tensor): Tensor => filledLike(like, 0);
export const onesLike = (like: Tensor): Tensor => filledLike(like, 1);

export const elementwiseGradients: GradientTable = {
  Add: ({ inputs: [a, b], grad, needs }) => [
    needs[0] ? unbroadcast(grad, a!.shape) : null,
    needs[1] ? unbroadcast(grad, b!.shape) : null,
  ],
  Sub: ({ inputs: [a, b], grad, needs }) => [
    needs[0] ? unbroadcast(grad, a!.shape) : null,
    needs[1] ? unbroadcast(neg(grad), b!.shape) : null,
  ],
  Mul: ({ inputs: [a, b], grad, needs }) => [
    needs[0] ? unbroadcast(mul(grad, b!), a!.shape) : null,
    needs[1] ? unbroadcast(mul(grad, a!), b!.shape) : null,
  ],
  Div: ({ inputs: [a, b], outputs: [y], grad, needs }) => {
    const ga = div(grad, b!);
    return [needs[0] ? unbroadcast(ga, a!.shape) : null, needs[1] ? unbroadcast(neg(mul(ga, y)), b!.shape) : null];
  },
  Neg: ({ grad }) => [neg(grad)],
  Sum: ({ inputs, grad, needs }) => inputs.map((t, i) => (needs[i] ? unbroadcast(grad, t!.shape) : null)),
};
