import { Tensor } from '../core/graph';
import { Shape, ShapeError, formatShape, normaliseAxis, sameShape } from '../core/shape';
import { GradientTable } from '../autodiff/rule';
import { add, mul, sub } from './elementwise';
import { reciprocal, sqrt } from './math';
import { reduceMean, sumLeading } from './reduce';
import { expand } from './shape';

export interface LayerNormalizationOptions {
  /** First normalised axis; the statistics run over it and every axis after it. */
  readonly axis?: number;
  readonly epsilon?: number;
}

const axesFrom = (first: number, rank: number): number[] => Array.from({ length: rank - first }, (_, i) => first + i);

/**
 * ONNX LayerNormalization (opset 17): (x - mean) / sqrt(var + epsilon) * scale + bias, the statistics (biased
 * variance) over the axes from `axis` on; scale and bias have the shape of those axes.
 */
export function layerNormalization(x: Tensor, scale: Tensor, bias: Tensor | null, options: LayerNormalizationOptions = {}): Tensor {
  const axis = normaliseAxis('LayerNormalization', options.axis ?? -1, x.rank);
  const normalised = x.shape.slice(axis);
  for (const t of [scale, bias]) {
    if (t && (!sameShape(t.shape, normalised) || t.dtype !== x.dtype)) {
      throw new ShapeError(`LayerNormalization: ${t.dtype}${formatShape(t.shape)} does not fit input ${x.dtype}${formatShape(x.shape)} normalised from axis ${axis}`);
    }
  }
  return x.graph.addNode(
    'LayerNormalization',
    bias ? [x, scale, bias] : [x, scale],
    { axis: { type: 'int', value: axis }, epsilon: { type: 'float', value: options.epsilon ?? 1e-5 } },
    [{ dtype: x.dtype, shape: x.shape }],
  )[0];
}

/** A scale of ones for `layerNormalization` without weights: a broadcast scalar, which the gradient rule skips. */
export function unitScale(x: Tensor, shape: Shape): Tensor {
  return expand(x.graph.scalar(1, x.dtype), shape);
}

function isUnitScale(t: Tensor): boolean {
  const source = t.producer?.opType === 'Expand' ? t.producer.inputs[0] : t;
  const data = source ? t.graph.constants.get(source) : undefined;
  return data !== undefined && data.length === 1 && Number(data[0]) === 1;
}

/**
 * (x - mean) / sqrt(var + epsilon) with mean and biased variance over `axes` (any set of axes), composed of
 * reductions and elementwise operators that differentiate through their own rules: batch-statistics BatchNorm.
 */
export function normalizeOverAxes(x: Tensor, axes: readonly number[], epsilon: number): Tensor {
  const { centred, invStd } = statistics(x, axes, epsilon);
  return mul(centred, invStd);
}

/** x - mean and 1 / sqrt(biased variance + epsilon) over `axes` (kept as size-1 dimensions). */
function statistics(x: Tensor, axes: readonly number[], epsilon: number): { centred: Tensor; invStd: Tensor } {
  const centred = sub(x, reduceMean(x, axes, true));
  const variance = reduceMean(mul(centred, centred), axes, true);
  return { centred, invStd: reciprocal(sqrt(add(variance, epsilon))) };
}

export const normGradients: GradientTable = {
  // Recomputes the statistics from the saved input rather than using the op's optional Mean/InvStdDev outputs,
  // whose type (float or bfloat16 in opset 17) would not fit float64 graphs. With xhat the normalised input and
  // h = gy * scale: dx = invstd * (h - mean(h) - xhat * mean(h * xhat)), dscale = sum(gy * xhat) and
  // dbias = sum(gy) over the leading axes.
  LayerNormalization: ({ node, inputs: [x, scale, bias], grad, needs }) => {
    const axis = node.attributes.axis.value as number;
    // The attribute travels as float32; recompute with exactly that value.
    const epsilon = Math.fround(node.attributes.epsilon.value as number);
    const axes = axesFrom(axis, x!.rank);
    const leading = axesFrom(0, axis);
    const { centred, invStd } = statistics(x!, axes, epsilon);
    const xhat = mul(centred, invStd);
    const overLeading = (t: Tensor) => sumLeading(t, leading.length);
    let dx: Tensor | null = null;
    if (needs[0]) {
      const h = isUnitScale(scale!) ? grad : mul(grad, scale!);
      dx = mul(invStd, sub(sub(h, reduceMean(h, axes, true)), mul(xhat, reduceMean(mul(h, xhat), axes, true))));
    }
    return [dx, needs[1] ? overLeading(mul(grad, xhat)) : null, bias && needs[2] ? overLeading(grad) : null];
  },
};
