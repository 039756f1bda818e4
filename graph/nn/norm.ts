import { Tensor } from '../core/graph';
import { ShapeError, formatShape, sameShape } from '../core/shape';
import { add, mul } from '../ops/elementwise';
import { layerNormalization, normalizeOverAxes, unitScale } from '../ops/norm';
import { reshape } from '../ops/shape';

export interface LayerNormOptions {
  readonly normalizedShape: number | readonly number[];
  readonly eps?: number;
  /** `weight` (ones) and `bias` (zeros) of the normalised shape; without them the scale is a constant 1. */
  readonly elementwiseAffine?: boolean;
}

/** torch.nn.LayerNorm over the trailing `normalizedShape` axes (ONNX LayerNormalization). */
export function layerNorm(x: Tensor, options: LayerNormOptions): Tensor {
  const shape = typeof options.normalizedShape === 'number' ? [options.normalizedShape] : [...options.normalizedShape];
  if (!sameShape(x.shape.slice(x.rank - shape.length), shape)) {
    throw new ShapeError(`layerNorm ${x.graph.scopedName('')}: input ${formatShape(x.shape)} does not end in ${formatShape(shape)}`);
  }
  const g = x.graph;
  const affine = options.elementwiseAffine ?? true;
  const scale = affine ? g.parameter('weight', x.dtype, shape, { kind: 'ones' }) : unitScale(x, shape);
  const bias = affine ? g.parameter('bias', x.dtype, shape, { kind: 'zeros' }) : null;
  return layerNormalization(x, scale, bias, { axis: x.rank - shape.length, epsilon: options.eps ?? 1e-5 });
}

export interface InstanceNorm3dOptions {
  readonly eps?: number;
  /** `weight` (ones) and `bias` (zeros), one per channel. PyTorch's default is false. */
  readonly affine?: boolean;
}

/**
 * torch.nn.InstanceNorm3d without running statistics: each (sample, channel) normalised over D, H, W, as ONNX
 * LayerNormalization from axis 2 (ONNX Runtime runs it 1.5-2x faster than the ReduceMean composition and with a
 * smaller float32 error; InstanceNormalization itself has no float64 kernel and would need its own rule).
 */
export function instanceNorm3d(x: Tensor, options: InstanceNorm3dOptions = {}): Tensor {
  if (x.rank !== 5) throw new ShapeError(`instanceNorm3d ${x.graph.scopedName('')}: input ${formatShape(x.shape)} is not [N, C, D, H, W]`);
  const y = layerNormalization(x, unitScale(x, x.shape.slice(2)), null, { axis: 2, epsilon: options.eps ?? 1e-5 });
  if (!options.affine) return y;
  const channels = x.shape[1];
  const g = x.graph;
  const weight = g.parameter('weight', x.dtype, [channels], { kind: 'ones' });
  const bias = g.parameter('bias', x.dtype, [channels], { kind: 'zeros' });
  const perChannel = (t: Tensor) => reshape(t, [channels, 1, 1, 1]);
  return add(mul(y, perChannel(weight)), perChannel(bias));
}

/**
 * torch.nn.BatchNorm1d(affine=False, track_running_stats=False): x [N, C] or [N, C, L] normalised per channel with
 * the statistics of the batch (biased variance), in training and evaluation alike.
 */
export function batchNorm1dBatchStats(x: Tensor, options: { readonly eps?: number } = {}): Tensor {
  if (x.rank !== 2 && x.rank !== 3) {
    throw new ShapeError(`batchNorm1dBatchStats ${x.graph.scopedName('')}: input ${formatShape(x.shape)} is not [N, C] or [N, C, L]`);
  }
  return normalizeOverAxes(x, x.rank === 2 ? [0] : [0, 2], options.eps ?? 1e-5);
}
