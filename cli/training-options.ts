/**
 * The options `voco train` and `voco finetune` share (model size, the training loop, data, run, device and
 * distributed ones): their declarations, the config fields they set, and how their values are read. Each command
 * passes its defaults and, where they differ, its own descriptions; it lays its options out in its own groups.
 */
import type { Argv, Options } from 'yargs';
import { PRESET_FEATURE_SIZE, SwinPreset } from '../graph/models/swinunetr-encoder';
import { DEFAULT_DIGEST_EVERY } from '../runtime/distributed/data-parallel';
import type { LoopSettings } from '../runtime/loop/task';
import { EXECUTION_PROVIDERS, ExecutionProvider } from '../runtime/session/providers';
import { explicitFields, resumeOption } from './run-command';

/** Shared option name -> config field (both commands' configs have every one of these fields). */
export const SHARED_OPTION_FIELDS = {
  'feature-size': 'featureSize',
  roi: 'roi',
  'batch-size': 'batchSize',
  lr: 'lr',
  'weight-decay': 'weightDecay',
  'lr-schedule': 'lrSchedule',
  'warmup-steps': 'warmupSteps',
  'max-steps': 'maxSteps',
  'grad-clip': 'gradClip',
  'max-grad-norm': 'maxGradNorm',
  'max-bad-steps': 'maxBadSteps',
  'checkpoint-every': 'checkpointEvery',
  'keep-checkpoints': 'keepCheckpoints',
  seed: 'seed',
  data: 'data',
  'phantom-count': 'phantomCount',
  'on-bad-file': 'onBadFile',
  workers: 'workers',
  'cache-dir': 'cacheDir',
  logdir: 'logdir',
  'init-from': 'initFrom',
  ep: 'ep',
  'device-id': 'deviceId',
  threads: 'threads',
} as const;

/** The options a command's own table need not list: those above, and the ones that are not config fields. */
type SharedOption = keyof typeof SHARED_OPTION_FIELDS | 'preset' | 'resume' | 'config' | 'distributed' | 'digest-every';

/** The defaults the shared options show. */
export type SharedDefaults = LoopSettings &
  Readonly<{
    roi: number;
    batchSize: number;
    weightDecay: number;
    seed: number;
    phantomCount: number;
    onBadFile: 'skip' | 'fail';
    workers: number;
    cacheDir: string;
    ep: ExecutionProvider;
    deviceId: number;
    threads: number;
  }>;

/** A command's own wording of shared options (merged over the common declaration). */
export type SharedOptionTexts = Partial<Record<Exclude<SharedOption, 'config'>, Options>>;

/** What the shared options that are not config fields parse to. */
export interface SharedArgs {
  preset?: SwinPreset;
  resume?: string | boolean;
  distributed?: boolean;
  'digest-every'?: number;
}

/**
 * Declares the shared options with `d`'s values as their defaults, `texts` where the command words them its own
 * way; the device and distributed options get their groups here (a command may add its own to them after).
 */
export function sharedTrainingOptions(yargs: Argv, d: SharedDefaults, texts: SharedOptionTexts = {}): Argv {
  const declarations: Record<Exclude<SharedOption, 'config'>, Options> = {
    preset: { choices: Object.keys(PRESET_FEATURE_SIZE) as SwinPreset[], describe: 'model size: tiny (feature size 12), B (48), L (96), H (192)', defaultDescription: 'tiny' },
    'feature-size': { type: 'number', describe: "feature size (a multiple of 12) instead of the preset's" },
    roi: { type: 'number', describe: 'side of the cubic crops, a multiple of 32', defaultDescription: String(d.roi) },
    'batch-size': { type: 'number', describe: 'volumes per step', defaultDescription: String(d.batchSize) },
    lr: { type: 'number', describe: 'peak learning rate', defaultDescription: String(d.lr) },
    'weight-decay': { type: 'number', describe: 'decoupled weight decay', defaultDescription: String(d.weightDecay) },
    'lr-schedule': { choices: ['warmup-cosine', 'poly', 'constant'] as const, describe: 'linear warm-up then half cosine to 0 per step; (1 - t/T)^0.9; or constant', defaultDescription: d.lrSchedule },
    'warmup-steps': { type: 'number', describe: 'steps of linear warm-up', defaultDescription: String(d.warmupSteps) },
    'max-steps': { type: 'number', describe: 'total steps; the schedule ends here', defaultDescription: String(d.maxSteps) },
    'grad-clip': { type: 'boolean', describe: 'clip the global gradient norm to --max-grad-norm', defaultDescription: String(d.gradClip) },
    'max-grad-norm': { type: 'number', describe: 'largest global gradient norm with --grad-clip', defaultDescription: String(d.maxGradNorm) },
    'max-bad-steps': { type: 'number', describe: 'stop after this many steps in a row with a non-finite loss or gradient', defaultDescription: String(d.maxBadSteps) },
    'checkpoint-every': { type: 'number', describe: 'write a checkpoint every N steps (and at the end, and on Ctrl-C)', defaultDescription: String(d.checkpointEvery) },
    'keep-checkpoints': { type: 'number', describe: 'keep the newest K checkpoints', defaultDescription: String(d.keepCheckpoints) },
    seed: { type: 'number', describe: 'seed of weights, data order, crops and augmentations', defaultDescription: String(d.seed) },
    data: { type: 'string', describe: 'a Decathlon dataset JSON; default: built-in phantom CTs' },
    'phantom-count': { type: 'number', describe: 'volumes of the built-in phantom dataset', defaultDescription: String(d.phantomCount) },
    'on-bad-file': { choices: ['skip', 'fail'] as const, describe: 'skip a bad file with a warning, or stop', defaultDescription: d.onBadFile },
    workers: { type: 'number', describe: 'data loader threads (0: load on the training thread)', defaultDescription: String(d.workers) },
    'cache-dir': { type: 'string', describe: 'preprocessed-volume cache and built-in data', defaultDescription: d.cacheDir },
    logdir: { type: 'string', describe: 'checkpoints, metrics, TensorBoard events, loss.svg and exports', defaultDescription: d.logdir },
    resume: { describe: 'continue from the newest checkpoint in --logdir, or from the checkpoint file given' },
    'init-from': { type: 'string', describe: 'start from these weights instead of a fresh initialisation' },
    ep: { choices: EXECUTION_PROVIDERS, describe: 'ONNX Runtime execution provider', defaultDescription: d.ep },
    'device-id': { type: 'number', describe: "GPU index for cuda/webgpu (under mpirun: the rank's place on its machine)", defaultDescription: String(d.deviceId) },
    threads: { type: 'number', describe: 'CPU threads of ONNX Runtime (0: its default)', defaultDescription: String(d.threads) },
    distributed: { type: 'boolean', describe: 'use Open MPI even when no MPI launcher variables are set (under mpirun it is used anyway)' },
    'digest-every': { type: 'number', describe: 'check every N steps that all ranks hold identical parameters (0: never)', defaultDescription: String(DEFAULT_DIGEST_EVERY) },
  };
  let out = yargs
    .config('config', 'a JSON file holding any of these options by name (command-line options win)')
    .group(['ep', 'device-id', 'threads'], 'Device:')
    .group(['distributed', 'digest-every'], 'Distributed (under mpirun, see docs/distributed.md):');
  for (const [name, declaration] of Object.entries(declarations)) out = out.option(name, { ...declaration, ...texts[name as keyof SharedOptionTexts] });
  return out;
}

/** The run a training command's arguments ask for: the config fields given, --preset's feature size, --resume and MPI. */
export function sharedRunArgs<Config>(args: SharedArgs & Readonly<Record<string, unknown>>, fields: Readonly<Record<string, keyof Config>>) {
  const explicit = explicitFields<Config>(args, fields);
  const featureSize = 'featureSize' as keyof Config;
  if (args.preset !== undefined && explicit[featureSize] === undefined) explicit[featureSize] = PRESET_FEATURE_SIZE[args.preset];
  return { explicit, resume: resumeOption(args.resume), distributed: args.distributed, digestEvery: args['digest-every'] };
}
