import * as fs from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { resolveWeightSource } from '../graph/models/swinunetr/weights';
import { ORGANS } from '../data/phantom/organs';
import { PRESET_FEATURE_SIZE, SwinPreset } from '../graph/models/swinunetr-encoder';
import { DEFAULT_DIGEST_EVERY } from '../runtime/distributed/data-parallel';
import { FinetuneConfig, validateFinetuneConfig } from '../runtime/finetune/config';
import { finetune } from '../runtime/finetune/finetune';
import { EXECUTION_PROVIDERS } from '../runtime/session/providers';
import { explicitFields, resumeOption, runTrainingCommand } from './run-command';
import { DEFAULT_TRAIN_CONFIG } from './train';

/**
 * The run `npm run finetune` makes with no options: `tiny` on the built-in labelled phantoms, on the CPU, in
 * minutes. Upstream's roi 96 x 4 crops at 1.5 mm is about 100x the compute of a step here; 32^3 crops of volumes
 * resampled to 3 mm (96 mm of context, as a 64^3 crop at 1.5 mm) keep a step and a validation within seconds.
 */
export const DEFAULT_FINETUNE_CONFIG: FinetuneConfig = {
  featureSize: PRESET_FEATURE_SIZE.tiny,
  roi: 32,
  batchSize: 1,
  crops: 2,
  lr: 1e-3,
  weightDecay: 1e-5,
  lrSchedule: 'warmup-cosine',
  warmupSteps: 10,
  maxSteps: 200,
  gradClip: false,
  maxGradNorm: 1,
  checkpointEvery: 50,
  keepCheckpoints: 3,
  maxBadSteps: 5,
  seed: 0,
  phantomCount: 8,
  phantomValidation: 1,
  phantomOrgans: ['liver', 'spleen', 'right kidney', 'left kidney'],
  onBadFile: 'skip',
  workers: 1,
  cacheDir: '.voco-cache',
  valEvery: 50,
  overlap: 0.25,
  swBatchSize: 4,
  valCases: 0,
  freezeEncoder: false,
  logdir: 'runs/finetune',
  ep: 'cpu',
  deviceId: 0,
  threads: 0,
};

/** The voxel size of the built-in run (see DEFAULT_FINETUNE_CONFIG); --data keeps the abdomen chain's 1.5 mm. */
export const PHANTOM_SPACING: readonly [number, number, number] = [3, 3, 3];

/** `--init-from none`: fresh weights even where the default pre-training run has some. */
const FRESH = 'none';

/**
 * The weights a fresh run starts from: --init-from; for the built-in run (no --data, model, or --init-from), the
 * default pre-training run's (`npm run train`'s logdir) when it holds any; else none (fresh).
 */
function initialWeights(explicit: Partial<Record<keyof FinetuneConfig, unknown>>): string | undefined {
  if (explicit.initFrom === FRESH) return undefined;
  if (explicit.initFrom !== undefined) return explicit.initFrom as string;
  if (explicit.data !== undefined || explicit.featureSize !== undefined) return undefined;
  const logdir = DEFAULT_TRAIN_CONFIG.logdir;
  return fs.existsSync(logdir) && hasWeights(logdir) ? logdir : undefined;
}

function hasWeights(logdir: string): boolean {
  try {
    return fs.existsSync(resolveWeightSource(logdir));
  } catch {
    return false;
  }
}

const OPTION_FIELDS = {
  'feature-size': 'featureSize',
  'out-channels': 'outChannels',
  roi: 'roi',
  'batch-size': 'batchSize',
  crops: 'crops',
  lr: 'lr',
  'weight-decay': 'weightDecay',
  'lr-schedule': 'lrSchedule',
  'warmup-steps': 'warmupSteps',
  'max-steps': 'maxSteps',
  'grad-clip': 'gradClip',
  'max-grad-norm': 'maxGradNorm',
  'checkpoint-every': 'checkpointEvery',
  'keep-checkpoints': 'keepCheckpoints',
  'max-bad-steps': 'maxBadSteps',
  seed: 'seed',
  data: 'data',
  'phantom-count': 'phantomCount',
  'phantom-validation': 'phantomValidation',
  'phantom-organs': 'phantomOrgans',
  spacing: 'spacing',
  'on-bad-file': 'onBadFile',
  workers: 'workers',
  'cache-dir': 'cacheDir',
  'val-every': 'valEvery',
  overlap: 'overlap',
  'sw-batch-size': 'swBatchSize',
  'val-cases': 'valCases',
  'freeze-encoder': 'freezeEncoder',
  'init-from': 'initFrom',
  logdir: 'logdir',
  ep: 'ep',
  'device-id': 'deviceId',
  threads: 'threads',
} as const satisfies Record<string, keyof FinetuneConfig>;

type FinetuneArgs = { [K in keyof typeof OPTION_FIELDS]?: unknown } & {
  preset?: SwinPreset;
  resume?: string | boolean;
  distributed?: boolean;
  'digest-every'?: number;
};

const d = DEFAULT_FINETUNE_CONFIG;

/** `voco finetune`: upstream's SwinUNETR fine-tuning (Downstream/monai/BTCV) on ONNX Runtime. */
export const finetuneCommand: CommandModule<object, FinetuneArgs> = {
  command: 'finetune',
  describe: 'SwinUNETR segmentation fine-tuning (default: the tiny preset on built-in labelled phantoms, on the CPU)',
  builder: (yargs: Argv) =>
    yargs
      .config('config', 'a JSON file holding any of these options by name (command-line options win)')
      .group(['preset', 'feature-size', 'out-channels', 'roi', 'batch-size', 'crops'], 'Model:')
      .option('preset', { choices: Object.keys(PRESET_FEATURE_SIZE) as SwinPreset[], describe: 'model size: tiny (feature size 12), B (48), L (96), H (192)', defaultDescription: 'tiny' })
      .option('feature-size', { type: 'number', describe: "feature size (a multiple of 12) instead of the preset's" })
      .option('out-channels', { type: 'number', describe: "classes, background included", defaultDescription: "the datalist's labels table" })
      .option('roi', { type: 'number', describe: 'side of the cubic crops and of the validation windows, a multiple of 32 (upstream 96)', defaultDescription: String(d.roi) })
      .option('batch-size', { type: 'number', describe: 'volumes per step (upstream 1)', defaultDescription: String(d.batchSize) })
      .option('crops', { type: 'number', describe: 'random crops per volume, num_samples (upstream 4)', defaultDescription: String(d.crops) })
      .group(['lr', 'weight-decay', 'lr-schedule', 'warmup-steps', 'max-steps', 'grad-clip', 'max-grad-norm', 'max-bad-steps', 'freeze-encoder'], 'Optimisation:')
      .option('lr', { type: 'number', describe: 'peak learning rate of AdamW (upstream 3e-4; the built-in tiny run learns faster at 1e-3)', defaultDescription: String(d.lr) })
      .option('weight-decay', { type: 'number', describe: 'decoupled weight decay', defaultDescription: String(d.weightDecay) })
      .option('lr-schedule', { choices: ['warmup-cosine', 'poly', 'constant'] as const, describe: 'linear warm-up then half cosine to 0 per step; (1 - t/T)^0.9; or constant', defaultDescription: d.lrSchedule })
      .option('warmup-steps', { type: 'number', describe: 'steps of linear warm-up', defaultDescription: String(d.warmupSteps) })
      .option('max-steps', { type: 'number', describe: 'total steps; the schedule ends here', defaultDescription: String(d.maxSteps) })
      .option('grad-clip', { type: 'boolean', describe: 'clip the global gradient norm to --max-grad-norm', defaultDescription: String(d.gradClip) })
      .option('max-grad-norm', { type: 'number', describe: 'largest global gradient norm with --grad-clip', defaultDescription: String(d.maxGradNorm) })
      .option('max-bad-steps', { type: 'number', describe: 'stop after this many steps in a row with a non-finite loss or gradient', defaultDescription: String(d.maxBadSteps) })
      .option('freeze-encoder', { type: 'boolean', describe: 'train the decoders and the output layer only (swinViT and encoder1..4, encoder10 stay as initialised)', defaultDescription: 'false' })
      .group(['data', 'phantom-count', 'phantom-validation', 'phantom-organs', 'spacing', 'on-bad-file', 'workers', 'cache-dir', 'seed'], 'Data:')
      .option('data', { type: 'string', describe: 'a Decathlon datalist with labelled "training" and "validation" lists; default: built-in labelled phantoms' })
      .option('phantom-count', { type: 'number', describe: 'volumes of the built-in phantom dataset', defaultDescription: String(d.phantomCount) })
      .option('phantom-validation', { type: 'number', describe: 'of them, for validation', defaultDescription: String(d.phantomValidation) })
      .option('phantom-organs', { type: 'array', string: true, describe: `organs the built-in label maps mark, of: ${ORGANS.join(', ')}`, defaultDescription: d.phantomOrgans!.join(', ') })
      .option('spacing', { type: 'array', number: true, describe: 'voxel size in mm (x y z) the volumes are resampled to', defaultDescription: `${PHANTOM_SPACING.join(' ')} on the built-in phantoms, else 1.5 1.5 1.5` })
      .option('on-bad-file', { choices: ['skip', 'fail'] as const, describe: 'skip a bad image or label file with a warning, or stop', defaultDescription: d.onBadFile })
      .option('workers', { type: 'number', describe: 'data loader threads (0: load on the training thread)', defaultDescription: String(d.workers) })
      .option('cache-dir', { type: 'string', describe: 'preprocessed-pair cache and built-in data', defaultDescription: d.cacheDir })
      .option('seed', { type: 'number', describe: 'seed of fresh weights, data order, crops and augmentations', defaultDescription: String(d.seed) })
      .group(['val-every', 'overlap', 'sw-batch-size', 'val-cases'], 'Validation:')
      .option('val-every', { type: 'number', describe: 'validation Dice every N steps (and at the start and end)', defaultDescription: String(d.valEvery) })
      .option('overlap', { type: 'number', describe: 'sliding-window overlap (upstream 0.75)', defaultDescription: String(d.overlap) })
      .option('sw-batch-size', { type: 'number', describe: 'windows per segmenter run (upstream 2)', defaultDescription: String(d.swBatchSize) })
      .option('val-cases', { type: 'number', describe: 'validate on the first N cases of the list (0: all)', defaultDescription: String(d.valCases) })
      .group(['logdir', 'checkpoint-every', 'keep-checkpoints', 'resume', 'init-from'], 'Run:')
      .option('logdir', { type: 'string', describe: 'checkpoints, best.ckpt, metrics, TensorBoard events, loss.svg, dice.svg and segmenter.onnx', defaultDescription: d.logdir })
      .option('checkpoint-every', { type: 'number', describe: 'write a checkpoint every N steps (and at the end, and on Ctrl-C)', defaultDescription: String(d.checkpointEvery) })
      .option('keep-checkpoints', { type: 'number', describe: 'keep the newest K checkpoints (best.ckpt is kept apart)', defaultDescription: String(d.keepCheckpoints) })
      .option('resume', { describe: 'continue from the newest checkpoint in --logdir, or from the checkpoint file given' })
      .option('init-from', { type: 'string', describe: 'start from weights: a .ckpt, a pre-training logdir, encoder.onnx, a VoCo or MONAI SwinUNETR .pt, .safetensors; none: fresh', defaultDescription: `${DEFAULT_TRAIN_CONFIG.logdir} when it holds weights (built-in run), else fresh` })
      .group(['ep', 'device-id', 'threads'], 'Device:')
      .option('ep', { choices: EXECUTION_PROVIDERS, describe: 'ONNX Runtime execution provider', defaultDescription: d.ep })
      .option('device-id', { type: 'number', describe: "GPU index for cuda/webgpu (under mpirun: the rank's place on its machine)", defaultDescription: String(d.deviceId) })
      .option('threads', { type: 'number', describe: 'CPU threads of ONNX Runtime (0: its default)', defaultDescription: String(d.threads) })
      .group(['distributed', 'digest-every'], 'Distributed (under mpirun, see docs/distributed.md):')
      .option('distributed', { type: 'boolean', describe: 'use Open MPI even when no MPI launcher variables are set (under mpirun it is used anyway)' })
      .option('digest-every', { type: 'number', describe: 'check every N steps that all ranks hold identical parameters (0: never)', defaultDescription: String(DEFAULT_DIGEST_EVERY) }) as unknown as Argv<FinetuneArgs>,
  handler: async (args) => {
    const resume = resumeOption(args.resume);
    const explicit = explicitFields<FinetuneConfig>(args, OPTION_FIELDS);
    if (args.preset !== undefined && explicit.featureSize === undefined) explicit.featureSize = PRESET_FEATURE_SIZE[args.preset];
    if (!resume) explicit.initFrom = initialWeights(explicit);
    await runTrainingCommand<FinetuneConfig>({
      defaults: d,
      explicit,
      resume,
      distributed: args.distributed,
      digestEvery: args['digest-every'],
      configure: (merged) => {
        const spacing = merged.spacing ?? (merged.data === undefined && !resume ? PHANTOM_SPACING : undefined);
        return validateFinetuneConfig({ ...merged, ...(spacing ? { spacing } : {}) });
      },
      run: finetune,
    });
  },
};
