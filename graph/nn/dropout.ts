import { Tensor } from '../core/graph';
import { ShapeError, broadcastShapes, formatShape, sameShape } from '../core/shape';
import { div, mul } from '../ops/elementwise';

function scaledMask(module: string, x: Tensor, mask: Tensor, p: number): Tensor {
  if (!(p >= 0 && p < 1)) throw new RangeError(`${module}: drop probability ${p} is not in [0, 1)`);
  if (mask.dtype !== x.dtype) throw new ShapeError(`${module}: mask ${mask.dtype} and input ${x.dtype} differ in dtype`);
  if (!sameShape(broadcastShapes(module, [x.shape, mask.shape]), x.shape)) {
    throw new ShapeError(`${module}: mask ${formatShape(mask.shape)} does not broadcast to input ${formatShape(x.shape)}`);
  }
  // PyTorch divides the 0/1 mask by the keep probability, then multiplies: the same rounding as upstream.
  return div(mask, 1 - p);
}

/**
 * Dropout with the 0/1 keep mask fed as an input (drawn by the runtime's seeded generator): x * mask / (1 - p).
 * The mask broadcasts to x, so a [N, 1] mask drops whole rows as upstream's Dropout1d on a 2-D input does.
 */
export function dropout(x: Tensor, mask: Tensor, p: number): Tensor {
  return mul(x, scaledMask('dropout', x, mask, p));
}

/** Stochastic depth (MONAI's DropPath): the mask is [N, 1, ..., 1], one keep decision per sample. */
export function dropPath(x: Tensor, mask: Tensor, p: number): Tensor {
  if (mask.rank !== x.rank || mask.shape[0] !== x.shape[0] || mask.shape.slice(1).some((d) => d !== 1)) {
    throw new ShapeError(`dropPath: mask ${formatShape(mask.shape)} is not [${x.shape[0]}, 1, ...] for input ${formatShape(x.shape)}`);
  }
  return mul(x, scaledMask('dropPath', x, mask, p));
}
