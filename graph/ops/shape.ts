import { Tensor } from '../core/graph';
import { Shape, ShapeError, broadcastShapes, formatShape, size } from '../core/shape';
import { GradientTable } from '../autodiff/rule';
import { int64s } from './int64';
import { unbroadcast } from './reduce';

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

export const shapeGradients: GradientTable = {
  Reshape: ({ inputs: [x], grad }) => [reshape(grad, x!.shape), null],
  Identity: ({ grad }) => [grad],
  Expand: ({ inputs: [x], grad }) => [unbroadcast(grad, x!.shape), null],
};
