import { UserError } from '../../common/user-error';
import { OptimizerConfig } from '../../graph/optim/config';
import { DEFAULT_VOCO_OPTIONS, stepRows } from '../../graph/models/voco/options';
import { ExecutionProvider } from '../session/providers';
import { LrScheduleKind } from '../loop/schedule';

export class TrainConfigError extends UserError {}

/** Everything that decides a pre-training run; saved in every checkpoint so `--resume` continues the same run. */
export interface TrainConfig {
  readonly featureSize: number;
  readonly roi: number;
  readonly batchSize: number;
  readonly swBatchSize: number;
  readonly dropPathRate: number;
  readonly featureDropout: number;
  readonly optimizer: 'adamw' | 'adam' | 'sgd';
  readonly lr: number;
  readonly weightDecay: number;
  readonly momentum: number;
  readonly lrSchedule: LrScheduleKind;
  readonly warmupSteps: number;
  readonly maxSteps: number;
  readonly gradClip: boolean;
  readonly maxGradNorm: number;
  readonly checkpointEvery: number;
  readonly keepCheckpoints: number;
  /** Consecutive steps with a non-finite loss or gradient after which the run stops. */
  readonly maxBadSteps: number;
  readonly seed: number;
  /** A pre-training config or Decathlon JSON; undefined trains on the built-in phantoms. */
  readonly data?: string;
  readonly phantomCount: number;
  readonly onBadFile: 'skip' | 'fail';
  readonly workers: number;
  readonly cacheDir: string;
  readonly logdir: string;
  readonly ep: ExecutionProvider;
  readonly deviceId: number;
  readonly threads: number;
  /** Weights (.pt, .safetensors, .ckpt) to start from instead of a fresh initialisation. */
  readonly initFrom?: string;
  /**
   * Crops per backbone run when a step is computed in pieces (less memory, same numbers); 0 runs the single
   * training model. Undefined chooses by size (see cropsPerRunFor).
   */
  readonly cropsPerRun?: number;
  /** Fixed batches whose loss is measured every `heldOutEvery` steps; undefined chooses (see heldOutBatchesFor). */
  readonly heldOutBatches?: number;
  readonly heldOutEvery: number;
}

/**
 * Held-out batches: 4 when a step runs as one model; none when it runs in pieces, because the eval graph is not
 * split and would need the memory the pieces save.
 */
export function heldOutBatchesFor(c: TrainConfig): number {
  return c.heldOutBatches ?? (cropsPerRunFor(c) === 0 ? 4 : 0);
}

/** Up to this many voxels of crops per step, the single training model stays under about 4 GB. */
const SINGLE_MODEL_VOXELS = 16 * 32 ** 3;

/** The pieces a step runs in: as configured, else the single model for small steps and pieces of 2 crops above. */
export function cropsPerRunFor(c: TrainConfig): number {
  if (c.cropsPerRun !== undefined) return c.cropsPerRun;
  const rows = stepRows({ ...c, baseCrops: DEFAULT_VOCO_OPTIONS.baseCrops });
  return rows * c.roi ** 3 <= SINGLE_MODEL_VOXELS ? 0 : 2;
}

/** Upstream's optimizer settings: AdamW with amsgrad, Adam (L2-coupled decay) and SGD with momentum. */
export function upstreamOptimizer(kind: TrainConfig['optimizer'], weightDecay: number, momentum = 0.9): OptimizerConfig {
  switch (kind) {
    case 'adamw':
      return { kind: 'adamw', amsgrad: true, weightDecay };
    case 'adam':
      return { kind: 'adam', weightDecay };
    case 'sgd':
      return { kind: 'sgd', momentum, weightDecay };
  }
}

export const optimizerConfig = (c: TrainConfig): OptimizerConfig => upstreamOptimizer(c.optimizer, c.weightDecay, c.momentum);

/** Checks what the model and data layers do not check themselves; one line naming the option. */
export function validateTrainConfig(c: TrainConfig): TrainConfig {
  const wholeNumbers: [option: string, value: number, least: number][] = [
    ['max-steps', c.maxSteps, 1],
    ['checkpoint-every', c.checkpointEvery, 1],
    ['keep-checkpoints', c.keepCheckpoints, 1],
    ['max-bad-steps', c.maxBadSteps, 1],
    ['held-out-every', c.heldOutEvery, 1],
    ['phantom-count', c.phantomCount, 1],
    ['held-out-batches', heldOutBatchesFor(c), 0],
    ['warmup-steps', c.warmupSteps, 0],
    ['workers', c.workers, 0],
    ['device-id', c.deviceId, 0],
    ['threads', c.threads, 0],
    ['seed', c.seed, 0],
    ['crops-per-run', cropsPerRunFor(c), 0],
  ];
  for (const [option, value, least] of wholeNumbers) {
    if (!Number.isInteger(value) || value < least) throw new TrainConfigError(`--${option} must be a whole number >= ${least}, got ${value}`);
  }
  if (!(c.lr > 0)) throw new TrainConfigError(`--lr must be > 0, got ${c.lr}`);
  if (!(c.weightDecay >= 0)) throw new TrainConfigError(`--weight-decay must be >= 0, got ${c.weightDecay}`);
  if (!(c.maxGradNorm > 0)) throw new TrainConfigError(`--max-grad-norm must be > 0, got ${c.maxGradNorm}`);
  return c;
}

/** The options that shape the graphs: a resumed run must keep them. */
export function modelKey(c: TrainConfig): string {
  return JSON.stringify([c.featureSize, c.roi, c.batchSize, c.swBatchSize, c.dropPathRate, c.featureDropout, optimizerConfig(c)]);
}

/** What the artifacts depend on: the model options and how a step is split into pieces. */
export function artifactsKey(c: TrainConfig): string {
  return JSON.stringify([modelKey(c), cropsPerRunFor(c)]);
}
