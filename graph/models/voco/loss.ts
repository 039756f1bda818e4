import { Tensor } from '../../core/graph';
import { add, div, mul, neg, sub } from '../../ops/elementwise';
import { cast, equal } from '../../ops/compare';
import { abs, log, maximum, relu, sqrt } from '../../ops/math';
import { matmul, transposeLast2 } from '../../ops/matmul';
import { reduceSum } from '../../ops/reduce';
import { detach, reshape } from '../../ops/shape';
import { split } from '../../ops/slice';
import { rollBack } from '../roll';

/** How the rows of the head outputs are laid out: batch*sw random crops first, then batch*bases base crops. */
export interface VocoLayout {
  readonly batch: number;
  readonly sw: number;
  readonly bases: number;
}

export interface VocoLossParts {
  /** intra + inter + reg, a scalar. */
  readonly total: Tensor;
  readonly intra: Tensor;
  readonly inter: Tensor;
  readonly reg: Tensor;
  /** relu(cosine(student crop, teacher base)) per volume: [batch, sw, bases]. */
  readonly logitsIntra: Tensor;
}

const COSINE_EPS = 1e-8;
const LOG_EPS = 1e-6;

/**
 * The VoCo loss of upstream `VoCoHead.forward`, vectorised over the volumes of the batch: student [N, C] and
 * teacher [N, C] head outputs (the teacher carries no gradient), labels [batch, sw, bases] the overlap of each
 * random crop with each base crop. Each part is averaged over the volumes as upstream does.
 */
export function vocoLoss(student: Tensor, teacher: Tensor, labels: Tensor, layout: VocoLayout): VocoLossParts {
  const { batch, sw, bases } = layout;
  const c = student.shape[1];
  const perVolume = (t: Tensor): [Tensor, Tensor] => {
    const [crops, baseRows] = split(t, [batch * sw, batch * bases], 0);
    return [reshape(crops, [batch, sw, c]), reshape(baseRows, [batch, bases, c])];
  };
  const [xStudent, basesStudent] = perVolume(student);
  const [xTeacher, basesTeacher] = perVolume(teacher);

  const logitsIntra = relu(cosine(xStudent, basesTeacher));
  const intra = batchMean(ceLoss(labels, logitsIntra));

  // Volume i is contrasted with the bases of volume (i + 1) mod batch.
  const teacherPrediction = detach(relu(cosine(xTeacher, rollBack(basesTeacher, 1, 0))));
  const studentPrediction = relu(cosine(xStudent, rollBack(basesStudent, 1, 0)));
  const inter = batchMean(ceLoss(teacherPrediction, studentPrediction));

  const reg = batchMean(regularization(basesStudent));
  return { total: add(add(intra, inter), reg), intra, inter, reg, logitsIntra };
}

/** Rows scaled to unit length (norms clamped at 1e-8, as torch.cosine_similarity). */
function unitRows(x: Tensor): Tensor {
  return div(x, maximum(sqrt(reduceSum(mul(x, x), [-1], true)), COSINE_EPS));
}

/** Cosine similarity of every row of a [..., m, C] with every row of b [..., k, C]: [..., m, k]. */
function cosine(a: Tensor, b: Tensor): Tensor {
  return matmul(unitRows(a), transposeLast2(unitRows(b)));
}

/** Upstream `ce_loss` per volume: labels and logits [batch, m, k] -> [batch]. */
function ceLoss(labels: Tensor, logits: Tensor): Tensor {
  const axes = [1, 2];
  const distance = abs(sub(labels, logits));
  const positive = mul(neg(labels), log(add(sub(1, distance), LOG_EPS)));
  const positivePart = div(reduceSum(positive, axes), add(reduceSum(labels, axes), LOG_EPS));
  const negativeLabels = cast(equal(labels, 0), labels.dtype);
  const negative = mul(neg(negativeLabels), log(add(sub(1, logits), LOG_EPS)));
  const negativePart = div(reduceSum(negative, axes), add(reduceSum(negativeLabels, axes), LOG_EPS));
  return add(positivePart, negativePart);
}

/**
 * Upstream `regularization_loss` per volume: the mean over pairs i < j of relu(cosine(base i, base j))^2, the
 * second base of each pair detached. bases [batch, k, C] -> [batch].
 */
function regularization(bases: Tensor): Tensor {
  const k = bases.shape[1];
  const similarity = relu(matmul(unitRows(bases), transposeLast2(unitRows(detach(bases)))));
  const upper = new Float32Array(k * k);
  for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) upper[i * k + j] = 1;
  const pairs = bases.graph.constant(upper, bases.dtype, [k, k], 'upper_pairs');
  return div(reduceSum(mul(mul(similarity, similarity), pairs), [1, 2]), (k * (k - 1)) / 2);
}

function batchMean(perVolume: Tensor): Tensor {
  return div(reduceSum(perVolume, [0]), perVolume.shape[0]);
}
