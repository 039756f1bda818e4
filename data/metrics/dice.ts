/**
 * MONAI 1.3.2's `DiceMetric` on label maps (class index per voxel, both maps on the same grid): per item and
 * class, and its `mean` / `mean_batch` reductions with their `not_nans` counts. `reduction="none"` is the score
 * matrix itself, NaN where a class is ignored.
 */

export interface DiceOptions {
  /** Classes 0 .. numClasses - 1 (MONAI's one-hot width). */
  readonly numClasses: number;
  /** Score class 0 too; default false. */
  readonly includeBackground?: boolean;
  /**
   * Default true: a class absent from the truth is NaN, predicted or not. False: it scores 1 when also absent
   * from the prediction, else 0.
   */
  readonly ignoreEmpty?: boolean;
}

/** Voxels per class of the prediction, of the truth, and of both. */
export interface ClassOverlap {
  readonly predicted: Float64Array;
  readonly truth: Float64Array;
  readonly intersection: Float64Array;
}

/** Counts per class in one pass; every value must be an integer class index below `numClasses`. */
export function classOverlap(pred: ArrayLike<number>, truth: ArrayLike<number>, numClasses: number): ClassOverlap {
  if (pred.length !== truth.length) throw new RangeError(`prediction has ${pred.length} voxels, truth ${truth.length}`);
  const predicted = new Float64Array(numClasses);
  const inTruth = new Float64Array(numClasses);
  const intersection = new Float64Array(numClasses);
  for (let i = 0; i < pred.length; i++) {
    const p = pred[i];
    const t = truth[i];
    if (!(p >= 0 && p < numClasses && Number.isInteger(p)) || !(t >= 0 && t < numClasses && Number.isInteger(t))) {
      throw new RangeError(`voxel ${i}: class ${p} (prediction) / ${t} (truth) outside 0..${numClasses - 1}`);
    }
    predicted[p]++;
    inTruth[t]++;
    if (p === t) intersection[p]++;
  }
  return { predicted, truth: inTruth, intersection };
}

/** Dice of each scored class (1 .. C - 1, or 0 .. C - 1 with the background): 2 |P n T| / (|P| + |T|). */
export function diceFromOverlap(overlap: ClassOverlap, options: DiceOptions): number[] {
  const first = options.includeBackground ? 0 : 1;
  const ignoreEmpty = options.ignoreEmpty ?? true;
  const scores: number[] = [];
  for (let c = first; c < options.numClasses; c++) {
    const denominator = overlap.truth[c] + overlap.predicted[c];
    if (ignoreEmpty) scores.push(overlap.truth[c] > 0 ? (2 * overlap.intersection[c]) / denominator : NaN);
    else scores.push(denominator > 0 ? (2 * overlap.intersection[c]) / denominator : 1);
  }
  return scores;
}

/** `DiceMetric` of one item (prediction and truth label maps of equal length). */
export function diceScores(pred: ArrayLike<number>, truth: ArrayLike<number>, options: DiceOptions): number[] {
  return diceFromOverlap(classOverlap(pred, truth, options.numClasses), options);
}

export interface MeanReduction {
  readonly value: number;
  /** Items with at least one non-NaN class. */
  readonly notNans: number;
}

/**
 * `reduction="mean"`: each item averaged over its non-NaN classes, then the items with at least one such class
 * averaged; 0 (with notNans 0) when there is none, as MONAI.
 */
export function reduceMean(scores: readonly (readonly number[])[]): MeanReduction {
  let sum = 0;
  let items = 0;
  for (const row of scores) {
    const valid = row.filter((v) => !Number.isNaN(v));
    if (valid.length === 0) continue;
    sum += valid.reduce((a, b) => a + b, 0) / valid.length;
    items++;
  }
  return { value: items > 0 ? sum / items : 0, notNans: items };
}

export interface MeanBatchReduction {
  readonly value: number[];
  /** Items where each class is not NaN. */
  readonly notNans: number[];
}

/** `reduction="mean_batch"`: each class averaged over the items where it is not NaN; 0 where it never is. */
export function reduceMeanBatch(scores: readonly (readonly number[])[]): MeanBatchReduction {
  const classes = scores[0]?.length ?? 0;
  const sums = new Array<number>(classes).fill(0);
  const counts = new Array<number>(classes).fill(0);
  for (const row of scores) {
    row.forEach((v, c) => {
      if (Number.isNaN(v)) return;
      sums[c] += v;
      counts[c]++;
    });
  }
  return { value: sums.map((s, c) => (counts[c] > 0 ? s / counts[c] : 0)), notNans: counts };
}
