/**
 * Evaluation of label-map predictions against ground truth, case by case: Dice (MONAI DiceMetric,
 * include_background=False, ignore_empty=True) and HD95 in mm (MONAI compute_hausdorff_distance, percentile 95,
 * with the voxel spacing of the grid), and a summary over the cases.
 */
import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../../common/user-error';
import type { LabelledCase } from '../datalist';
import { loadVolume } from '../nifti/read';
import { imageName, predictionFileName } from '../prediction-name';
import { allClose, columnNorms } from '../transforms/matrix';
import type { Volume } from '../volume';
import { MeanReduction, classOverlap, diceFromOverlap, reduceMean, reduceMeanBatch } from './dice';
import { hausdorffDistances } from './hausdorff';

/** Prediction and truth on different grids: almost always predictions of another image, or not inverted. */
export class GridMismatchError extends UserError {}

/** A label map that cannot be scored (non-integer or negative values, classes beyond the datalist's table). */
export class LabelMapError extends UserError {}

export const HD_PERCENTILE = 95;
/** Affines agree when |a - b| <= 1e-3 + 1e-5 |b| elementwise (mm): float32 header rounding, not a real shift. */
const AFFINE_ATOL = 1e-3;

export type CaseStatus = 'ok' | 'missing prediction' | 'failed';

export interface CaseResult {
  readonly name: string;
  readonly prediction: string;
  readonly truth: string;
  readonly status: CaseStatus;
  /** Why a case failed (a file that could not be read, a bad label value). */
  readonly problem?: string;
  /** Per foreground class 1 .. C - 1; NaN where the class is absent from the truth. Empty unless `ok`. */
  readonly dice: readonly number[];
  /** Mean over the case's non-NaN classes; NaN when the truth has no foreground class. */
  readonly meanDice: number;
  /** Per foreground class, mm; NaN when either mask is empty (see hausdorff.ts). */
  readonly hd95: readonly number[];
  /** Per foreground class: present in the truth / in the prediction. */
  readonly inTruth: readonly boolean[];
  readonly inPrediction: readonly boolean[];
}

/** Label values of a volume as class indices; a value that is not a non-negative integer is a LabelMapError. */
export function classIndices(volume: Volume, file: string): Uint16Array {
  const out = new Uint16Array(volume.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = volume.data[i];
    if (!(Number.isInteger(v) && v >= 0 && v < 65536)) throw new LabelMapError(`${file}: value ${v} is not a class index (voxel ${i})`);
    out[i] = v;
  }
  return out;
}

/** Shapes and affines must agree; otherwise a GridMismatchError naming both files. */
export function checkSameGrid(pred: Volume, predFile: string, truth: Volume, truthFile: string): void {
  if (pred.shape.some((n, i) => n !== truth.shape[i])) {
    throw new GridMismatchError(`${predFile} (${pred.shape.join('x')}) and ${truthFile} (${truth.shape.join('x')}) have different shapes`);
  }
  if (!allClose(pred.affine, truth.affine, AFFINE_ATOL)) {
    const origin = (v: Volume) => `origin ${[3, 7, 11].map((i) => v.affine[i].toFixed(2)).join(', ')}, voxel ${columnNorms(v.affine).map((s) => s.toFixed(3)).join('x')}`;
    throw new GridMismatchError(`${predFile} and ${truthFile} have different affines (${origin(pred)} vs ${origin(truth)})`);
  }
}

/** Scores one prediction/truth pair of label maps on the same grid with `numClasses` classes (0 = background). */
export function scorePair(pred: Uint16Array, truth: Uint16Array, grid: Volume, numClasses: number): Pick<CaseResult, 'dice' | 'meanDice' | 'hd95' | 'inTruth' | 'inPrediction'> {
  const overlap = classOverlap(pred, truth, numClasses);
  const dice = diceFromOverlap(overlap, { numClasses });
  const mean = reduceMean([dice]);
  const hd95 = hausdorffDistances(pred, truth, grid.shape, numClasses, { spacing: columnNorms(grid.affine), percentile: HD_PERCENTILE });
  return {
    dice,
    meanDice: mean.notNans > 0 ? mean.value : NaN,
    hd95,
    inTruth: Array.from(overlap.truth.subarray(1), (n) => n > 0),
    inPrediction: Array.from(overlap.predicted.subarray(1), (n) => n > 0),
  };
}

/**
 * Evaluates entry's prediction `<predDir>/<image name>_seg.nii.gz` against its label file. A missing prediction,
 * an unreadable file or bad label values make a non-ok result; mismatched grids throw GridMismatchError.
 * `numClasses` (from a datalist's labels table) bounds the class values; without it the case's own largest
 * value decides.
 */
export function evaluateCase(entry: LabelledCase, predDir: string, numClasses?: number): CaseResult {
  const prediction = path.join(predDir, predictionFileName(entry.image));
  const base = { name: imageName(entry.image), prediction, truth: entry.label, dice: [], meanDice: NaN, hd95: [], inTruth: [], inPrediction: [] };
  if (!fs.existsSync(prediction)) return { ...base, status: 'missing prediction' };
  try {
    const pred = loadVolume(prediction).volume;
    const truth = loadVolume(entry.label).volume;
    checkSameGrid(pred, prediction, truth, entry.label);
    const [p, t] = [classIndices(pred, prediction), classIndices(truth, entry.label)];
    let largest = 0;
    for (const labels of [p, t]) for (const v of labels) if (v > largest) largest = v;
    if (numClasses !== undefined && largest >= numClasses) {
      const file = t.includes(largest) ? entry.label : prediction;
      throw new LabelMapError(`${file}: class ${largest} is not in the datalist's labels table (0..${numClasses - 1})`);
    }
    return { ...base, status: 'ok', ...scorePair(p, t, pred, numClasses ?? largest + 1) };
  } catch (error) {
    if (error instanceof GridMismatchError || !(error instanceof UserError)) throw error;
    return { ...base, status: 'failed', problem: error.message };
  }
}

export interface ClassSummary {
  /** Cases whose truth holds the class. */
  readonly casesWithClass: number;
  /** Mean Dice over those cases (MONAI mean_batch); NaN when there are none. */
  readonly meanDice: number;
  /** Mean HD95 over the cases where it is a number (both masks non-empty), and their count. */
  readonly meanHd95: number;
  readonly hd95Cases: number;
  /** Cases with the class in the truth but not predicted (Dice 0, HD95 NaN). */
  readonly missed: number;
  /** Cases predicting the class where the truth has none (Dice NaN and HD95 NaN: not penalised by either). */
  readonly falsePositive: number;
}

export interface EvaluationSummary {
  /** Foreground classes 1 .. C - 1. */
  readonly classes: readonly ClassSummary[];
  /** MONAI's reduction="mean" over the scored cases; notNans = cases with at least one foreground class. */
  readonly meanDice: MeanReduction;
  readonly evaluated: number;
  readonly missingPredictions: number;
  readonly failed: number;
}

/** Per-class and overall summary; cases scored with fewer classes count those beyond as absent from both maps. */
export function summarise(cases: readonly CaseResult[], foregroundClasses: number): EvaluationSummary {
  const ok = cases.filter((c) => c.status === 'ok');
  const pad = <T>(values: readonly T[], fill: T) => Array.from({ length: foregroundClasses }, (_, i) => (i < values.length ? values[i] : fill));
  const dice = ok.map((c) => pad(c.dice, NaN));
  const batch = reduceMeanBatch(dice);
  const classes = Array.from({ length: foregroundClasses }, (_, k): ClassSummary => {
    const hd = ok.map((c) => c.hd95[k]).filter((v) => v !== undefined && Number.isFinite(v));
    return {
      casesWithClass: batch.notNans[k] ?? 0,
      meanDice: batch.notNans[k] ? batch.value[k] : NaN,
      meanHd95: hd.length > 0 ? hd.reduce((a, b) => a + b, 0) / hd.length : NaN,
      hd95Cases: hd.length,
      missed: ok.filter((c) => c.inTruth[k] && !c.inPrediction[k]).length,
      falsePositive: ok.filter((c) => !c.inTruth[k] && c.inPrediction[k]).length,
    };
  });
  return {
    classes,
    meanDice: reduceMean(dice),
    evaluated: ok.length,
    missingPredictions: cases.filter((c) => c.status === 'missing prediction').length,
    failed: cases.filter((c) => c.status === 'failed').length,
  };
}
