import type { Argv, CommandModule } from 'yargs';
import { PRESET_FEATURE_SIZE, VocoPreset } from '../graph/models/voco/options';
import { DEFAULT_DIGEST_EVERY } from '../runtime/distributed/data-parallel';
import { EXECUTION_PROVIDERS } from '../runtime/session/providers';
import { TrainConfig, validateTrainConfig } from '../runtime/voco/config';
import { pretrain } from '../runtime/voco/pretrain';
import { explicitFields, resumeOption, runTrainingCommand } from './run-command';

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

/** CLI option name -> config field, for every option that maps one to one. */
const OPTION_FIELDS = {
  'feature-size': 'featureSize',
  roi: 'roi',
  'batch-size': 'batchSize',
  'sw-batch-size': 'swBatchSize',
  'drop-path-rate': 'dropPathRate',
  'feature-dropout': 'featureDropout',
  optimizer: 'optimizer',
  lr: 'lr',
  'weight-decay': 'weightDecay',
  momentum: 'momentum',
  'lr-schedule': 'lrSchedule',
  'warmup-steps': 'warmupSteps',
  'max-steps': 'maxSteps',
  'grad-clip': 'gradClip',
  'max-grad-norm': 'maxGradNorm',
  'checkpoint-every': 'checkpointEvery',
  'keep-checkpoints': 'keepCheckpoints',
  'max-bad-steps': 'maxBadSteps',
  'held-out-batches': 'heldOutBatches',
  'held-out-every': 'heldOutEvery',
  seed: 'seed',
  data: 'data',
  'phantom-count': 'phantomCount',
  'on-bad-file': 'onBadFile',
  workers: 'workers',
  'cache-dir': 'cacheDir',
  logdir: 'logdir',
  ep: 'ep',
  'device-id': 'deviceId',
  threads: 'threads',
  'init-from': 'initFrom',
  'crops-per-run': 'cropsPerRun',
} as const satisfies Record<string, keyof TrainConfig>;

type TrainArgs = { [K in keyof typeof OPTION_FIELDS]?: TrainConfig[(typeof OPTION_FIELDS)[K]] } & {
  preset?: VocoPreset;
  resume?: string | boolean;
  distributed?: boolean;
  'digest-every'?: number;
};

const d = DEFAULT_TRAIN_CONFIG;

/** `voco train`: upstream's voco_train.py on ONNX Runtime. */
export const trainCommand: CommandModule<object, TrainArgs> = {
  command: 'train',
  describe: 'VoCo pre-training (default: the tiny preset on built-in phantom CTs, on the CPU)',
  builder: (yargs: Argv) =>
    yargs
      .config('config', 'a JSON file holding any of these options by name (command-line options win)')
      .group(['preset', 'feature-size', 'roi', 'batch-size', 'sw-batch-size', 'drop-path-rate', 'feature-dropout'], 'Model:')
      .option('preset', { choices: Object.keys(PRESET_FEATURE_SIZE) as VocoPreset[], describe: 'model size: tiny (feature size 12), B (48), L (96), H (192)', defaultDescription: 'tiny' })
      .option('feature-size', { type: 'number', describe: 'feature size (a multiple of 12) instead of the preset\'s' })
      .option('roi', { type: 'number', describe: 'side of the cubic crops, a multiple of 32 (upstream 64)', defaultDescription: String(d.roi) })
      .option('batch-size', { type: 'number', describe: 'volumes per step (upstream 2 per GPU)', defaultDescription: String(d.batchSize) })
      .option('sw-batch-size', { type: 'number', describe: 'random crops per volume', defaultDescription: String(d.swBatchSize) })
      .option('drop-path-rate', { type: 'number', describe: 'stochastic depth of the Swin blocks', defaultDescription: String(d.dropPathRate) })
      .option('feature-dropout', { type: 'number', describe: 'probability of dropping a whole embedding row before the student head (upstream Dropout1d 0.2; 0 turns it off)', defaultDescription: String(d.featureDropout) })
      .group(['optimizer', 'lr', 'weight-decay', 'momentum', 'lr-schedule', 'warmup-steps', 'max-steps', 'grad-clip', 'max-grad-norm', 'max-bad-steps'], 'Optimisation:')
      .option('optimizer', { choices: ['adamw', 'adam', 'sgd'] as const, describe: 'adamw (with amsgrad, as upstream), adam or sgd', defaultDescription: d.optimizer })
      .option('lr', { type: 'number', describe: 'peak learning rate', defaultDescription: String(d.lr) })
      .option('weight-decay', { type: 'number', describe: 'weight decay (decoupled for adamw, L2 for adam and sgd)', defaultDescription: String(d.weightDecay) })
      .option('momentum', { type: 'number', describe: 'SGD momentum', defaultDescription: String(d.momentum) })
      .option('lr-schedule', { choices: ['warmup-cosine', 'poly', 'constant'] as const, describe: 'linear warm-up then half cosine to 0; (1 - t/T)^0.9; or constant', defaultDescription: d.lrSchedule })
      .option('warmup-steps', { type: 'number', describe: 'steps of linear warm-up (upstream 5000)', defaultDescription: String(d.warmupSteps) })
      .option('max-steps', { type: 'number', describe: 'total steps; the schedule ends here', defaultDescription: String(d.maxSteps) })
      .option('grad-clip', { type: 'boolean', describe: 'clip the global gradient norm to --max-grad-norm', defaultDescription: String(d.gradClip) })
      .option('max-grad-norm', { type: 'number', describe: 'largest global gradient norm with --grad-clip', defaultDescription: String(d.maxGradNorm) })
      .option('max-bad-steps', { type: 'number', describe: 'stop after this many steps in a row with a non-finite loss or gradient', defaultDescription: String(d.maxBadSteps) })
      .group(['data', 'phantom-count', 'on-bad-file', 'workers', 'cache-dir', 'seed'], 'Data:')
      .option('data', { type: 'string', describe: 'a pre-training config {"datasets": [...]} or a Decathlon dataset JSON; default: built-in phantom CTs' })
      .option('phantom-count', { type: 'number', describe: 'volumes of the built-in phantom dataset', defaultDescription: String(d.phantomCount) })
      .option('on-bad-file', { choices: ['skip', 'fail'] as const, describe: 'skip a bad volume with a warning, or stop', defaultDescription: d.onBadFile })
      .option('workers', { type: 'number', describe: 'data loader threads (0: load on the training thread)', defaultDescription: String(d.workers) })
      .option('cache-dir', { type: 'string', describe: 'preprocessed-volume cache and built-in data', defaultDescription: d.cacheDir })
      .option('seed', { type: 'number', describe: 'seed of weights, data order, crops and dropout', defaultDescription: String(d.seed) })
      .group(['logdir', 'checkpoint-every', 'keep-checkpoints', 'held-out-batches', 'held-out-every', 'resume', 'init-from'], 'Run:')
      .option('logdir', { type: 'string', describe: 'checkpoints, metrics, TensorBoard events, loss.svg and exports', defaultDescription: d.logdir })
      .option('checkpoint-every', { type: 'number', describe: 'write a checkpoint every N steps (and at the end, and on Ctrl-C)', defaultDescription: String(d.checkpointEvery) })
      .option('keep-checkpoints', { type: 'number', describe: 'keep the newest K checkpoints', defaultDescription: String(d.keepCheckpoints) })
      .option('held-out-batches', { type: 'number', describe: 'fixed batches whose loss (eval graph, no dropout) shows whether the run learns; 0: none', defaultDescription: '4, or 0 when steps run in pieces' })
      .option('held-out-every', { type: 'number', describe: 'measure the held-out loss every N steps (and at the start and end)', defaultDescription: String(d.heldOutEvery) })
      .option('resume', { describe: 'continue from the newest checkpoint in --logdir, or from the checkpoint file given' })
      .option('init-from', { type: 'string', describe: 'start from VoCo weights (.pt, .safetensors or .ckpt) instead of a fresh initialisation' })
      .group(['ep', 'device-id', 'threads', 'crops-per-run'], 'Device:')
      .option('ep', { choices: EXECUTION_PROVIDERS, describe: 'ONNX Runtime execution provider', defaultDescription: d.ep })
      .option('device-id', { type: 'number', describe: 'GPU index for cuda/webgpu (under mpirun: the rank\'s place on its machine)', defaultDescription: String(d.deviceId) })
      .option('threads', { type: 'number', describe: 'CPU threads of ONNX Runtime (0: its default)', defaultDescription: String(d.threads) })
      .option('crops-per-run', { type: 'number', describe: 'compute a step in pieces of this many crops (less memory, same numbers; 0: all crops in one run)', defaultDescription: 'one run up to 16 crops of 32^3, else 2' })
      .group(['distributed', 'digest-every'], 'Distributed (under mpirun, see docs/distributed.md):')
      .option('distributed', { type: 'boolean', describe: 'use Open MPI even when no MPI launcher variables are set (under mpirun it is used anyway)' })
      .option('digest-every', { type: 'number', describe: 'check every N steps that all ranks hold identical parameters (0: never)', defaultDescription: String(DEFAULT_DIGEST_EVERY) }) as unknown as Argv<TrainArgs>,
  handler: async (args) => {
    const explicit = explicitFields<TrainConfig>(args, OPTION_FIELDS);
    if (args.preset !== undefined && explicit.featureSize === undefined) explicit.featureSize = PRESET_FEATURE_SIZE[args.preset];
    await runTrainingCommand<TrainConfig>({
      defaults: d,
      explicit,
      resume: resumeOption(args.resume),
      distributed: args.distributed,
      digestEvery: args['digest-every'],
      configure: validateTrainConfig,
      run: pretrain,
    });
  },
};
