import { Tensor } from '../core/graph';
import { Shape, normaliseAxis, sameShape } from '../core/shape';
import { GradientTable } from '../autodiff/rule';
import { int64s } from './int64';
import { expand, reshape } from './shape';

function reducedShape(op: string, x: Tensor, axes: readonly number[], keepDims: boolean): { axes: number[]; shape: number[] } {
  const norm = [...new Set(axes.map((a) => normaliseAxis(op, a, x.rank)))].sort((p, q) => p - q);
  const shape: number[] = [];
  x.shape.forEach((d, i) => {
    if (!norm.includes(i)) shape.push(d);
    else if (keepDims) shape.push(1);
  });
  return { axes: norm, shape };
}

/** Sum over `axes` (all axes when empty is not allowed: pass them explicitly). */
export function reduceSum(x: Tensor, axes: readonly number[], keepDims = false): Tensor {
  const r = reducedShape('ReduceSum', x, axes, keepDims);
  return x.graph.addNode('ReduceSum', [x, int64s(x.graph, r.axes, 'axes')], { keepdims: { type: 'int', value: keepDims ? 1 : 0 } }, [
    { dtype: x.dtype, shape: r.shape },
  ])[0];
}

/** Undoes broadcasting: sums `grad` down to `shape` (the shape of the operand that was broadcast). */
export function unbroadcast(grad: Tensor, shape: Shape): Tensor {
  if (sameShape(grad.shape, shape)) return grad;
  const lead = grad.rank - shape.length;
  const axes: number[] = [];
  grad.shape.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  const summed = axes.length ? reduceSum(grad, axes, true) : grad;
  return sameShape(summed.shape, shape) ? summed : reshape(summed, shape);
}

export const reduceGradients: GradientTable = {
  ReduceSum: ({ inputs: [x, axesInput], grad, node }) => {
    const axes = Array.from(x!.graph.constants.get(axesInput!) as BigInt64Array, Number);
    const keptDims = node.attributes.keepdims?.value !== 0;
    const kept = keptDims ? grad : reshape(grad, x!.shape.map((d, i) => (axes.includes(i) ? 1 : d)));
    return [expand(kept, x!.shape), null];
  },
};
