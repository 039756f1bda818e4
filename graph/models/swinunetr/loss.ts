import { Tensor } from '../../core/graph';
import { ShapeError, formatShape } from '../../core/shape';
import { cast, equal } from '../../ops/compare';
import { add, div, mul, sub } from '../../ops/elementwise';
import { exp, log } from '../../ops/math';
import { reduceMax, reduceMean, reduceSum } from '../../ops/reduce';
import { detach } from '../../ops/shape';
import { slice } from '../../ops/slice';

export interface DiceCeParts {
  /** dice + ce, a scalar. */
  readonly total: Tensor;
  readonly dice: Tensor;
  readonly ce: Tensor;
  /** [N, C - 1]: the Dice loss of each item and foreground class, before the mean. */
  readonly dicePerItemClass: Tensor;
}

/** MONAI DiceLoss's smooth_nr and smooth_dr. */
const SMOOTH = 1e-5;

/**
 * MONAI 1.3.2 `DiceCELoss(include_background=False, to_onehot_y=True, softmax=True)` on logits [N, C, ...spatial]
 * and label [N, 1, ...spatial] holding the classes 0..C-1 as floats. Dice: softmax over the C channels, channel 0
 * dropped, 1 - (2 sum(p y) + 1e-5) / (sum(p) + sum(y) + 1e-5) per item and class over the voxels, then the mean.
 * CE: cross-entropy of the raw logits over all C channels, the mean over every voxel. Total: dice + ce.
 */
export function diceCeLoss(logits: Tensor, label: Tensor): DiceCeParts {
  const [n, c, ...spatial] = logits.shape;
  if (logits.rank < 3 || c < 2 || label.dtype !== logits.dtype || formatShape(label.shape) !== formatShape([n, 1, ...spatial])) {
    throw new ShapeError(`diceCeLoss: logits ${logits} need C >= 2 and a label [N, 1, ...spatial] of their dtype, got ${label}`);
  }
  const g = logits.graph;
  const voxelAxes = spatial.map((_, i) => i + 2);
  const classIds = Array.from({ length: c }, (_, i) => i);
  const classes = g.constant(
    logits.dtype === 'float64' ? Float64Array.from(classIds) : Float32Array.from(classIds),
    logits.dtype,
    [1, c, ...spatial.map(() => 1)],
    'class_ids',
  );
  const target = cast(equal(label, classes), logits.dtype);

  // Both terms from the same exponentials, shifted by the (gradient-free) channel maximum. The softmax is written
  // out: ONNX Runtime's Softmax over axis 1 of [N, C, D, H, W] runs row by row over the C values of each voxel.
  const shifted = sub(logits, detach(reduceMax(logits, [1], true)));
  const exps = exp(shifted);
  const sumExps = reduceSum(exps, [1], true);

  const foreground = (t: Tensor): Tensor => slice(t, { starts: [1], ends: [c], axes: [1] });
  const p = foreground(div(exps, sumExps));
  const y = foreground(target);
  const intersection = reduceSum(mul(p, y), voxelAxes);
  const denominator = add(reduceSum(p, voxelAxes), reduceSum(y, voxelAxes));
  const dicePerItemClass = sub(1, div(add(mul(intersection, 2), SMOOTH), add(denominator, SMOOTH)));
  const dice = reduceMean(dicePerItemClass, [0, 1]);

  // -log softmax at the target class = logsumexp(x) - x[target].
  const perVoxel = sub(log(sumExps), reduceSum(mul(shifted, target), [1], true));
  const ce = reduceMean(perVoxel, perVoxel.shape.map((_, i) => i));
  return { total: add(dice, ce), dice, ce, dicePerItemClass };
}
