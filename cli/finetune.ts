import * as fs from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { resolveWeightSource } from '../graph/models/swinunetr/weights';
import { ORGANS } from '../data/phantom/organs';
import { PRESET_FEATURE_SIZE } from '../graph/models/swinunetr-encoder';
import { FinetuneConfig, validateFinetuneConfig } from '../runtime/finetune/config';
import { finetune } from '../runtime/finetune/finetune';
import { runTrainingCommand } from './run-command';
import { DEFAULT_TRAIN_CONFIG } from './train';
import { SHARED_OPTION_FIELDS, SharedArgs, sharedRunArgs, sharedTrainingOptions } from './training-options';

/**
 * The run `npm run finetune` makes with no options: `tiny` on the built-in labelled phantoms, on the CPU, in
 * minutes (with PHANTOM_RUN below). Upstream's roi 96 x 4 crops is about 50x the compute of a step here; 32^3
 * crops keep a step and a validation within seconds.
 */
export const DEFAULT_FINETUNE_CONFIG: FinetuneConfig = {
  featureSize: PRESET_FEATURE_SIZE.tiny,
  roi: 32,
  batchSize: 1,
  crops: 2,
  cropSampler: 'pos-neg',
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

/**
 * What the built-in run (no --data) changes of the defaults, where the option is not given: volumes resampled to
 * 5 mm (32^3 crops see 160 mm, about what upstream's 96^3 crops at 1.5 mm see, at 1/27 of the voxels), crops
 * centred on each class equally (liver would otherwise take most of them and the kidneys few), and a peak learning
 * rate of 1e-2. Measured from fresh weights over 200 steps: at 3 mm, pos-neg crops and 1e-3 the liver alone is
 * learned (mean Dice 0.13); at 5 mm with these settings the mean reaches 0.5 (README).
 * A run on --data keeps the defaults above (the abdomen chain's 1.5 mm, upstream's pos-neg crops).
 */
export const PHANTOM_RUN = {
  spacing: [5, 5, 5],
  cropSampler: 'classes',
  lr: 1e-2,
} as const satisfies Partial<FinetuneConfig>;

/** PHANTOM_RUN as command-line options, for programs that run the built-in setting on a datalist of phantoms. */
export function phantomRunArgs(): string[] {
  return ['--spacing', ...PHANTOM_RUN.spacing.map(String), '--crop-sampler', PHANTOM_RUN.cropSampler, '--lr', String(PHANTOM_RUN.lr)];
}

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

/** CLI option name -> config field, for every option that maps one to one: the shared ones and finetune's own. */
const OPTION_FIELDS = {
  ...SHARED_OPTION_FIELDS,
  'out-channels': 'outChannels',
  crops: 'crops',
  'crops-per-run': 'cropsPerRun',
  'crop-sampler': 'cropSampler',
  'class-ratios': 'classRatios',
  'phantom-validation': 'phantomValidation',
  'phantom-organs': 'phantomOrgans',
  spacing: 'spacing',
  'val-every': 'valEvery',
  overlap: 'overlap',
  'sw-batch-size': 'swBatchSize',
  'val-cases': 'valCases',
  'freeze-encoder': 'freezeEncoder',
} as const satisfies Record<string, keyof FinetuneConfig>;

type FinetuneArgs = { [K in keyof typeof OPTION_FIELDS]?: unknown } & SharedArgs;

const d = DEFAULT_FINETUNE_CONFIG;

/** `voco finetune`: upstream's SwinUNETR fine-tuning (Downstream/monai/BTCV) on ONNX Runtime. */
export const finetuneCommand: CommandModule<object, FinetuneArgs> = {
  command: 'finetune',
  describe: 'SwinUNETR segmentation fine-tuning (default: the tiny preset on built-in labelled phantoms, on the CPU)',
  builder: (yargs: Argv) =>
    sharedTrainingOptions(
      yargs
        .group(['preset', 'feature-size', 'out-channels', 'roi', 'batch-size', 'crops', 'crop-sampler', 'class-ratios'], 'Model:')
        .group(['lr', 'weight-decay', 'lr-schedule', 'warmup-steps', 'max-steps', 'grad-clip', 'max-grad-norm', 'max-bad-steps', 'freeze-encoder'], 'Optimisation:')
        .group(['data', 'phantom-count', 'phantom-validation', 'phantom-organs', 'spacing', 'on-bad-file', 'workers', 'cache-dir', 'seed'], 'Data:')
        .group(['val-every', 'overlap', 'sw-batch-size', 'val-cases'], 'Validation:')
        .group(['logdir', 'checkpoint-every', 'keep-checkpoints', 'resume', 'init-from'], 'Run:'),
      d,
      {
        roi: { describe: 'side of the cubic crops and of the validation windows, a multiple of 32 (upstream 96)' },
        'batch-size': { describe: 'volumes per step (upstream 1)' },
        lr: { describe: 'peak learning rate of AdamW (upstream 3e-4)', defaultDescription: `${PHANTOM_RUN.lr} on the built-in phantoms, else ${d.lr}` },
        data: { describe: 'a Decathlon datalist with labelled "training" and "validation" lists; default: built-in labelled phantoms' },
        'on-bad-file': { describe: 'skip a bad image or label file with a warning, or stop' },
        'cache-dir': { describe: 'preprocessed-pair cache and built-in data' },
        seed: { describe: 'seed of fresh weights, data order, crops and augmentations' },
        logdir: { describe: 'checkpoints, best.ckpt, metrics, TensorBoard events, loss.svg, dice.svg and segmenter.onnx' },
        'keep-checkpoints': { describe: 'keep the newest K checkpoints (best.ckpt is kept apart)' },
        'init-from': {
          describe: 'start from weights: a .ckpt, a pre-training logdir, encoder.onnx, a VoCo or MONAI SwinUNETR .pt, .safetensors; none: fresh',
          defaultDescription: `${DEFAULT_TRAIN_CONFIG.logdir} when it holds weights (built-in run), else fresh`,
        },
      },
    )
      .group(['crops-per-run'], 'Device:')
      .option('out-channels', { type: 'number', describe: 'classes, background included', defaultDescription: "the datalist's labels table" })
      .option('crops', { type: 'number', describe: 'random crops per volume, num_samples (upstream 4)', defaultDescription: String(d.crops) })
      .option('crops-per-run', { type: 'number', describe: 'run a step in parts of this many crops, gradients averaged (less memory, same numbers; 0: all crops in one run)', defaultDescription: 'one run up to 4 crops of 96^3 at feature size 12, else 1' })
      .option('crop-sampler', { choices: ['pos-neg', 'classes'] as const, describe: "crop centres: on foreground 9 times in 10 (upstream's RandCropByPosNegLabeld) or on each class by --class-ratios (MONAI's RandCropByLabelClassesd, for small organs)", defaultDescription: `${PHANTOM_RUN.cropSampler} on the built-in phantoms, else ${d.cropSampler}` })
      .option('class-ratios', { type: 'array', number: true, describe: 'with --crop-sampler classes: a weight per class, background first', defaultDescription: 'all equal' })
      .option('freeze-encoder', { type: 'boolean', describe: 'train the decoders and the output layer only (swinViT and encoder1..4, encoder10 stay as initialised)', defaultDescription: 'false' })
      .option('phantom-validation', { type: 'number', describe: 'of them, for validation', defaultDescription: String(d.phantomValidation) })
      .option('phantom-organs', { type: 'array', string: true, describe: `organs the built-in label maps mark, of: ${ORGANS.join(', ')}`, defaultDescription: d.phantomOrgans!.join(', ') })
      .option('spacing', { type: 'array', number: true, describe: 'voxel size in mm (x y z) the volumes are resampled to', defaultDescription: `${PHANTOM_RUN.spacing.join(' ')} on the built-in phantoms, else 1.5 1.5 1.5` })
      .option('val-every', { type: 'number', describe: 'validation Dice every N steps (and at the start and end)', defaultDescription: String(d.valEvery) })
      .option('overlap', { type: 'number', describe: 'sliding-window overlap (upstream 0.75)', defaultDescription: String(d.overlap) })
      .option('sw-batch-size', { type: 'number', describe: 'windows per segmenter run (upstream 2)', defaultDescription: String(d.swBatchSize) })
      .option('val-cases', { type: 'number', describe: 'validate on the first N cases of the list (0: all)', defaultDescription: String(d.valCases) }) as unknown as Argv<FinetuneArgs>,
  handler: async (args) => {
    const parsed = sharedRunArgs<FinetuneConfig>(args, OPTION_FIELDS);
    const { resume } = parsed;
    if (!resume) parsed.explicit.initFrom = initialWeights(parsed.explicit);
    await runTrainingCommand<FinetuneConfig>({
      defaults: d,
      ...parsed,
      configure: (merged) => {
        const builtIn = merged.data === undefined && !resume;
        const overrides = builtIn ? Object.fromEntries(Object.entries(PHANTOM_RUN).filter(([key]) => parsed.explicit[key as keyof FinetuneConfig] === undefined)) : {};
        return validateFinetuneConfig({ ...merged, ...overrides });
      },
      run: finetune,
    });
  },
};
