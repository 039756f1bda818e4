import { Tensor, attr } from '../core/graph';
import { Shape, ShapeError, formatShape, normaliseAxis, sameShape, size } from '../core/shape';
import { int64s } from './int64';
import { reshape } from './shape';

function reducedShape(op: string, x: Tensor, axes: readonly number[], keepDims: boolean): { axes: number[]; shape: number[] } {
  // ONNX reads empty axes as "all axes", which our shape would not say: require them spelled out.
  if (axes.length === 0) throw new ShapeError(`${op}: no axes given for ${formatShape(x.shape)}; list the axes to reduce`);
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

/** ReduceMean and ReduceMax take their axes as an attribute in opset 17. */
function reduceWithAttribute(op: string, x: Tensor, axes: readonly number[], keepDims: boolean): Tensor {
  const r = reducedShape(op, x, axes, keepDims);
  return x.graph.addNode(op, [x], { axes: attr.ints(r.axes), keepdims: attr.int(keepDims ? 1 : 0) }, [
    { dtype: x.dtype, shape: r.shape },
  ])[0];
}

/** Mean over `axes` (listed explicitly). */
export const reduceMean = (x: Tensor, axes: readonly number[], keepDims = false): Tensor =>
  reduceWithAttribute('ReduceMean', x, axes, keepDims);

/** Maximum over `axes` (listed explicitly); its gradient is shared equally by tied maxima. */
export const reduceMax = (x: Tensor, axes: readonly number[], keepDims = false): Tensor =>
  reduceWithAttribute('ReduceMax', x, axes, keepDims);

/**
 * Sum over the first `count` axes as a product with a row of ones: ONNX Runtime's CPU ReduceSum over leading axes
 * runs 3 to 10 times slower than that MatMul ([65536, 48]: 10.6 against 1.2 ms; docs/performance.md).
 */
export function sumLeading(x: Tensor, count: number): Tensor {
  if (count === 0) return x;
  if (count === x.rank) return reduceSum(x, x.shape.map((_, i) => i));
  // Expand and MatMul spelled out: elementwise.ts (filled) and matmul.ts import this module.
  const g = x.graph;
  const rows = size(x.shape.slice(0, count));
  const rest = x.shape.slice(count);
  const ones = g.addNode('Expand', [g.scalar(1, x.dtype), int64s(g, [1, rows], 'shape')], {}, [{ dtype: x.dtype, shape: [1, rows] }])[0];
  const product = g.addNode('MatMul', [ones, reshape(x, [rows, size(rest)])], {}, [{ dtype: x.dtype, shape: [1, size(rest)] }])[0];
  return reshape(product, rest);
}

/** Undoes broadcasting: sums `grad` down to `shape` (the shape of the operand that was broadcast). */
export function unbroadcast(grad: Tensor, shape: Shape): Tensor {
  if (sameShape(grad.shape, shape)) return grad;
  const lead = grad.rank - shape.length;
  const axes: number[] = [];
  grad.shape.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  const leadingOnly = axes.every((a, i) => a === i);
  const summed = axes.length === 0 ? grad : leadingOnly ? sumLeading(grad, axes.length) : reduceSum(grad, axes, true);
  return sameShape(summed.shape, shape) ? summed : reshape(summed, shape);
}
