import { DType, ONNX_DTYPE, isFloat } from '../core/dtype';
import { Tensor, attr } from '../core/graph';
import { ShapeError, broadcastShapes } from '../core/shape';
import { GradientRule, GradientTable } from '../autodiff/rule';
import { Operand, asTensors } from './operand';
import { unbroadcast } from './reduce';

function sameDTypes(op: string, a: Operand, b: Operand): [Tensor, Tensor] {
  const [x, y] = asTensors(a, b);
  if (x.dtype !== y.dtype) throw new ShapeError(`${op}: dtypes differ in ${x} and ${y}`);
  return [x, y];
}

function comparison(opType: string, a: Operand, b: Operand): Tensor {
  const [x, y] = sameDTypes(opType, a, b);
  const shape = broadcastShapes(opType, [x.shape, y.shape]);
  return x.graph.addNode(opType, [x, y], {}, [{ dtype: 'bool', shape }])[0];
}

/** Elementwise a == b as a bool tensor (broadcasting). */
export const equal = (a: Operand, b: Operand): Tensor => comparison('Equal', a, b);
/** Elementwise a > b as a bool tensor (broadcasting). */
export const greater = (a: Operand, b: Operand): Tensor => comparison('Greater', a, b);
/** Elementwise a < b as a bool tensor (broadcasting). */
export const less = (a: Operand, b: Operand): Tensor => comparison('Less', a, b);

/** `a` where `cond` holds, else `b` (all three broadcast; numbers take the dtype of the tensor branch). */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  if (cond.dtype !== 'bool') throw new ShapeError(`Where: the condition must be bool, got ${cond}`);
  const [x, y] = sameDTypes('Where', a, b);
  const shape = broadcastShapes('Where', [cond.shape, x.shape, y.shape]);
  return cond.graph.addNode('Where', [cond, x, y], {}, [{ dtype: x.dtype, shape }])[0];
}

/** Converts to `dtype`; a cast to the tensor's own dtype is the tensor itself. */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  return x.graph.addNode('Cast', [x], { to: attr.int(ONNX_DTYPE[dtype]) }, [{ dtype, shape: x.shape }])[0];
}

/** For operators whose output is piecewise constant in every input (comparisons, Sign): no gradient flows. */
export const noGradient: GradientRule = ({ inputs }) => inputs.map(() => null);

export const compareGradients: GradientTable = {
  Equal: noGradient,
  Greater: noGradient,
  Less: noGradient,
  Where: ({ inputs: [cond, a, b], grad, needs }) => [
    null,
    needs[1] ? unbroadcast(where(cond!, grad, 0), a!.shape) : null,
    needs[2] ? unbroadcast(where(cond!, 0, grad), b!.shape) : null,
  ],
  // Float-to-float casts pass the gradient back in the source precision; to or from integers nothing flows.
  Cast: ({ inputs: [x], outputs: [y], grad }) => [isFloat(x!.dtype) && isFloat(y.dtype) ? cast(grad, x!.dtype) : null],
};
