import { UserError } from '../../common/user-error';
import { ORGANS, OrganName } from '../../data/phantom/organs';
import type { CropSampler } from '../../data/segmentation/centers';
import { SWINUNETR_OPTIMIZER } from '../../graph/models/swinunetr/options';
import { isSpacing } from '../../graph/models/swinunetr/segmenter-file';
import type { OptimizerConfig } from '../../graph/optim/config';
import type { LoopSettings } from '../loop/task';
import type { ExecutionProvider } from '../session/providers';

export class FinetuneConfigError extends UserError {}

/** Everything that decides a fine-tuning run; saved in every checkpoint so `--resume` continues the same run. */
export interface FinetuneConfig extends LoopSettings {
  readonly featureSize: number;
  /** Classes, background included; undefined takes the datalist's `labels` table (or the labels' largest index + 1). */
  readonly outChannels?: number;
  readonly roi: number;
  /** Volumes per step. */
  readonly batchSize: number;
  /** Crops per volume (upstream's num_samples). */
  readonly crops: number;
  /**
   * Crops per run of the training model: a step runs in parts of this many crops with the gradients averaged (the
   * same numbers, the memory of one part); 0: all in one run; undefined chooses by size (see cropsPerRunFor).
   */
  readonly cropsPerRun?: number;
  /** Crop centres by foreground/background (upstream's RandCropByPosNegLabeld) or by class; undefined: pos-neg. */
  readonly cropSampler?: CropSampler;
  /** With the classes sampler: one weight per class, background first; undefined: all equal. */
  readonly classRatios?: readonly number[];
  readonly weightDecay: number;
  readonly seed: number;
  /** A Decathlon datalist with labelled `training` and `validation` lists; undefined uses the built-in phantoms. */
  readonly data?: string;
  readonly phantomCount: number;
  readonly phantomValidation: number;
  /** The organs the built-in phantoms' label maps mark (in this order); undefined: all of them. */
  readonly phantomOrgans?: readonly OrganName[];
  /** Voxel size (mm) of the segmentation chain instead of the abdomen family's 1.5 mm; undefined keeps it. */
  readonly spacing?: readonly [number, number, number];
  readonly onBadFile: 'skip' | 'fail';
  readonly workers: number;
  readonly cacheDir: string;
  /** Validation every N steps (and at the start and end). */
  readonly valEvery: number;
  /** Sliding-window overlap of validation (upstream 0.75). */
  readonly overlap: number;
  /** Windows per segmenter run in validation (upstream 2). */
  readonly swBatchSize: number;
  /** Validation volumes used (the first N of the list; 0: all). */
  readonly valCases: number;
  readonly freezeEncoder: boolean;
  /** Weights to start from; undefined starts fresh. */
  readonly initFrom?: string;
  readonly ep: ExecutionProvider;
  readonly deviceId: number;
  readonly threads: number;
}

/** The options the graphs and the optimizer depend on: a resumed run must keep them. */
export function modelKey(c: FinetuneConfig, outChannels: number): string {
  return JSON.stringify([c.featureSize, outChannels, c.roi, c.batchSize * c.crops, c.swBatchSize, c.freezeEncoder, optimizerConfig(c)]);
}

/** Up to this many voxels x feature size in a step (tiny's 4 crops of 96^3: a 8.6 GiB step), one run. */
const ONE_RUN_VOXEL_FEATURES = 4 * 96 ** 3 * 12;

/** The crops of one training-model run: as configured (0: all), else all for steps up to tiny's at roi 96, 1 above. */
export function cropsPerRunFor(c: FinetuneConfig): number {
  const rows = c.batchSize * c.crops;
  if (c.cropsPerRun !== undefined) return c.cropsPerRun === 0 ? rows : c.cropsPerRun;
  return rows * c.roi ** 3 * c.featureSize <= ONE_RUN_VOXEL_FEATURES ? rows : 1;
}

export const optimizerConfig = (c: FinetuneConfig): OptimizerConfig => ({ ...SWINUNETR_OPTIMIZER, weightDecay: c.weightDecay });

/** Checks what the model and data layers do not check themselves; one line naming the option. */
export function validateFinetuneConfig(c: FinetuneConfig): FinetuneConfig {
  const wholeNumbers: [option: string, value: number, least: number][] = [
    ['max-steps', c.maxSteps, 1],
    ['batch-size', c.batchSize, 1],
    ['crops', c.crops, 1],
    ['checkpoint-every', c.checkpointEvery, 1],
    ['keep-checkpoints', c.keepCheckpoints, 1],
    ['max-bad-steps', c.maxBadSteps, 1],
    ['val-every', c.valEvery, 1],
    ['val-cases', c.valCases, 0],
    ['sw-batch-size', c.swBatchSize, 1],
    ['phantom-count', c.phantomCount, 2],
    ['phantom-validation', c.phantomValidation, 1],
    ['warmup-steps', c.warmupSteps, 0],
    ['workers', c.workers, 0],
    ['device-id', c.deviceId, 0],
    ['threads', c.threads, 0],
    ['seed', c.seed, 0],
  ];
  for (const [option, value, least] of wholeNumbers) {
    if (!Number.isInteger(value) || value < least) throw new FinetuneConfigError(`--${option} must be a whole number >= ${least}, got ${value}`);
  }
  if (c.data === undefined && c.phantomValidation >= c.phantomCount) {
    throw new FinetuneConfigError(`--phantom-validation must be below --phantom-count (${c.phantomCount}), got ${c.phantomValidation}`);
  }
  const unknown = (c.phantomOrgans ?? []).find((o) => !(ORGANS as readonly string[]).includes(o));
  if (unknown !== undefined) throw new FinetuneConfigError(`--phantom-organs: "${unknown}" is not one of ${ORGANS.join(', ')}`);
  if (c.cropSampler !== undefined && c.cropSampler !== 'pos-neg' && c.cropSampler !== 'classes') throw new FinetuneConfigError(`--crop-sampler must be pos-neg or classes, got ${c.cropSampler}`);
  if (c.classRatios !== undefined && !(c.classRatios.every((r) => r >= 0 && Number.isFinite(r)) && c.classRatios.some((r) => r > 0))) {
    throw new FinetuneConfigError(`--class-ratios must be numbers >= 0, not all 0, got ${JSON.stringify(c.classRatios)}`);
  }
  if (!(c.lr > 0)) throw new FinetuneConfigError(`--lr must be > 0, got ${c.lr}`);
  if (!(c.weightDecay >= 0)) throw new FinetuneConfigError(`--weight-decay must be >= 0, got ${c.weightDecay}`);
  if (!(c.maxGradNorm > 0)) throw new FinetuneConfigError(`--max-grad-norm must be > 0, got ${c.maxGradNorm}`);
  if (!(c.overlap >= 0 && c.overlap < 1)) throw new FinetuneConfigError(`--overlap must be >= 0 and < 1, got ${c.overlap}`);
  const rows = c.batchSize * c.crops;
  if (c.cropsPerRun !== undefined && !(Number.isInteger(c.cropsPerRun) && c.cropsPerRun >= 0 && (c.cropsPerRun === 0 || rows % c.cropsPerRun === 0))) {
    throw new FinetuneConfigError(`--crops-per-run must be 0 or a whole number that divides the ${rows} crops of a step (--batch-size x --crops), got ${c.cropsPerRun}`);
  }
  checkSpacing(c.spacing);
  return c;
}

/** `--spacing`: undefined, or three voxel sizes in mm. */
export function checkSpacing(spacing: readonly number[] | undefined): asserts spacing is FinetuneConfig['spacing'] {
  if (spacing !== undefined && !isSpacing(spacing)) {
    throw new FinetuneConfigError(`--spacing must be three voxel sizes in mm > 0, got ${JSON.stringify(spacing)}`);
  }
}
