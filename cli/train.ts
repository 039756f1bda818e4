import type { Argv, CommandModule } from 'yargs';
import { PRESET_FEATURE_SIZE } from '../graph/models/voco/options';
import { TrainConfig, validateTrainConfig } from '../runtime/voco/config';
import { pretrain } from '../runtime/voco/pretrain';
import { runTrainingCommand } from './run-command';
import { SHARED_OPTION_FIELDS, SharedArgs, sharedRunArgs, sharedTrainingOptions } from './training-options';

/** The run `npm run train` makes with no options: `tiny` on the built-in phantoms, on the CPU, in minutes. */
export const DEFAULT_TRAIN_CONFIG: TrainConfig = {
  featureSize: PRESET_FEATURE_SIZE.tiny,
  roi: 32,
  batchSize: 1,
  swBatchSize: 2,
  dropPathRate: 0,
  featureDropout: 0.2,
  optimizer: 'adamw',
  lr: 1e-4,
  weightDecay: 1e-2,
  momentum: 0.9,
  lrSchedule: 'warmup-cosine',
  warmupSteps: 10,
  maxSteps: 200,
  gradClip: false,
  maxGradNorm: 1,
  checkpointEvery: 50,
  keepCheckpoints: 3,
  maxBadSteps: 5,
  heldOutEvery: 25,
  seed: 0,
  phantomCount: 16,
  onBadFile: 'skip',
  workers: 1,
  cacheDir: '.voco-cache',
  logdir: 'runs/voco',
  ep: 'cpu',
  deviceId: 0,
  threads: 0,
};

/** CLI option name -> config field, for every option that maps one to one: the shared ones and train's own. */
const OPTION_FIELDS = {
  ...SHARED_OPTION_FIELDS,
  'sw-batch-size': 'swBatchSize',
  'drop-path-rate': 'dropPathRate',
  'feature-dropout': 'featureDropout',
  optimizer: 'optimizer',
  momentum: 'momentum',
  'held-out-batches': 'heldOutBatches',
  'held-out-every': 'heldOutEvery',
  'crops-per-run': 'cropsPerRun',
} as const satisfies Record<string, keyof TrainConfig>;

type TrainArgs = { [K in keyof typeof OPTION_FIELDS]?: TrainConfig[(typeof OPTION_FIELDS)[K]] } & SharedArgs;

const d = DEFAULT_TRAIN_CONFIG;

/** `voco train`: upstream's voco_train.py on ONNX Runtime. */
export const trainCommand: CommandModule<object, TrainArgs> = {
  command: 'train',
  describe: 'VoCo pre-training (default: the tiny preset on built-in phantom CTs, on the CPU)',
  builder: (yargs: Argv) =>
    sharedTrainingOptions(
      yargs
        .group(['preset', 'feature-size', 'roi', 'batch-size', 'sw-batch-size', 'drop-path-rate', 'feature-dropout'], 'Model:')
        .group(['optimizer', 'lr', 'weight-decay', 'momentum', 'lr-schedule', 'warmup-steps', 'max-steps', 'grad-clip', 'max-grad-norm', 'max-bad-steps'], 'Optimisation:')
        .group(['data', 'phantom-count', 'on-bad-file', 'workers', 'cache-dir', 'seed'], 'Data:')
        .group(['logdir', 'checkpoint-every', 'keep-checkpoints', 'held-out-batches', 'held-out-every', 'resume', 'init-from'], 'Run:'),
      d,
      {
        roi: { describe: 'side of the cubic crops, a multiple of 32 (upstream 64)' },
        'batch-size': { describe: 'volumes per step (upstream 2 per GPU)' },
        'weight-decay': { describe: 'weight decay (decoupled for adamw, L2 for adam and sgd)' },
        'warmup-steps': { describe: 'steps of linear warm-up (upstream 5000)' },
        data: { describe: 'a pre-training config {"datasets": [...]} or a Decathlon dataset JSON; default: built-in phantom CTs' },
        'on-bad-file': { describe: 'skip a bad volume with a warning, or stop' },
        seed: { describe: 'seed of weights, data order, crops and dropout' },
        'init-from': { describe: 'start from VoCo weights (.pt, .safetensors or .ckpt) instead of a fresh initialisation' },
      },
    )
      .option('sw-batch-size', { type: 'number', describe: 'random crops per volume', defaultDescription: String(d.swBatchSize) })
      .option('drop-path-rate', { type: 'number', describe: 'stochastic depth of the Swin blocks', defaultDescription: String(d.dropPathRate) })
      .option('feature-dropout', { type: 'number', describe: 'probability of dropping a whole embedding row before the student head (upstream Dropout1d 0.2; 0 turns it off)', defaultDescription: String(d.featureDropout) })
      .option('optimizer', { choices: ['adamw', 'adam', 'sgd'] as const, describe: 'adamw (with amsgrad, as upstream), adam or sgd', defaultDescription: d.optimizer })
      .option('momentum', { type: 'number', describe: 'SGD momentum', defaultDescription: String(d.momentum) })
      .option('held-out-batches', { type: 'number', describe: 'fixed batches whose loss (eval graph, no dropout) shows whether the run learns; 0: none', defaultDescription: '4, or 0 when steps run in pieces' })
      .option('held-out-every', { type: 'number', describe: 'measure the held-out loss every N steps (and at the start and end)', defaultDescription: String(d.heldOutEvery) })
      .group(['crops-per-run'], 'Device:')
      .option('crops-per-run', { type: 'number', describe: 'compute a step in pieces of this many crops (less memory, same numbers; 0: all crops in one run)', defaultDescription: 'one run up to 16 crops of 32^3, else 2' }) as unknown as Argv<TrainArgs>,
  handler: async (args) => {
    await runTrainingCommand<TrainConfig>({
      defaults: d,
      ...sharedRunArgs<TrainConfig>(args, OPTION_FIELDS),
      configure: validateTrainConfig,
      run: pretrain,
    });
  },
};
