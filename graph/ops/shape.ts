import { Tensor, attr } from '../core/graph';
import { Shape, ShapeError, broadcastShapes, formatShape, normaliseAxis, size } from '../core/shape';
import { int64s } from './int64';

/** Reshape to a fully specified shape (a single -1 is resolved here, so the emitted shape is static). */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const known = shape.filter((d) => d !== -1);
  const target = [...shape];
  const free = shape.indexOf(-1);
  if (free >= 0) target[free] = size(x.shape) / size(known);
  if (size(target) !== size(x.shape) || !target.every(Number.isInteger)) {
    throw new ShapeError(`Reshape: cannot reshape ${formatShape(x.shape)} to ${formatShape(shape)}`);
  }
  return x.graph.addNode('Reshape', [x, int64s(x.graph, target, 'shape')], {}, [{ dtype: x.dtype, shape: target }])[0];
}

export function expand(x: Tensor, shape: Shape): Tensor {
  const out = broadcastShapes('Expand', [x.shape, shape]);
  return x.graph.addNode('Expand', [x, int64s(x.graph, shape, 'shape')], {}, [{ dtype: x.dtype, shape: out }])[0];
}

/** Identity whose output passes no gradient back (PyTorch's `.detach()`). */
export function detach(x: Tensor): Tensor {
  return x.graph.addNode('Identity', [x], {}, [{ dtype: x.dtype, shape: x.shape }], true)[0];
}

export function identity(x: Tensor): Tensor {
  return x.graph.addNode('Identity', [x], {}, [{ dtype: x.dtype, shape: x.shape }])[0];
}

function distinctAxes(op: string, axes: readonly number[], rank: number, x: Tensor): number[] {
  const norm = axes.map((a) => normaliseAxis(op, a, rank));
  if (new Set(norm).size !== norm.length) throw new ShapeError(`${op}: repeated axis in [${axes.join(', ')}] for ${formatShape(x.shape)}`);
  return norm.sort((p, q) => p - q);
}

/** Removes size-1 axes: the given ones, or every size-1 axis when `axes` is omitted. */
export function squeeze(x: Tensor, axes?: readonly number[]): Tensor {
  const norm = axes ? distinctAxes('Squeeze', axes, x.rank, x) : x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
  for (const a of norm) {
    if (x.shape[a] !== 1) throw new ShapeError(`Squeeze: axis ${a} of ${formatShape(x.shape)} has size ${x.shape[a]}, not 1`);
  }
  // ONNX reads an empty axes list as "every size-1 axis"; squeezing nothing is the tensor itself.
  if (norm.length === 0) return x;
  const shape = x.shape.filter((_, i) => !norm.includes(i));
  return x.graph.addNode('Squeeze', [x, int64s(x.graph, norm, 'axes')], {}, [{ dtype: x.dtype, shape }])[0];
}

/** Inserts size-1 axes at `axes`, which index the output. */
export function unsqueeze(x: Tensor, axes: readonly number[]): Tensor {
  const rank = x.rank + axes.length;
  const norm = distinctAxes('Unsqueeze', axes, rank, x);
  const rest = [...x.shape];
  const shape = Array.from({ length: rank }, (_, i) => (norm.includes(i) ? 1 : rest.shift()!));
  return x.graph.addNode('Unsqueeze', [x, int64s(x.graph, norm, 'axes')], {}, [{ dtype: x.dtype, shape }])[0];
}

/** To 2-D: the axes before `axis` become the rows, the rest the columns (`axis` in [-rank, rank]). */
export function flatten(x: Tensor, axis = 1): Tensor {
  const a = axis < 0 ? axis + x.rank : axis;
  if (!Number.isInteger(a) || a < 0 || a > x.rank) throw new ShapeError(`Flatten: axis ${axis} out of range for ${formatShape(x.shape)}`);
  const shape = [size(x.shape.slice(0, a)), size(x.shape.slice(a))];
  return x.graph.addNode('Flatten', [x], { axis: attr.int(a) }, [{ dtype: x.dtype, shape }])[0];
}
