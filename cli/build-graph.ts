import type { Argv, CommandModule } from 'yargs';
import { PRESET_FEATURE_SIZE, VocoModelOptionError, VocoPreset, resolveVocoOptions } from '../graph/models/voco/options';
import { writeVocoArtifacts } from '../graph/models/voco/artifacts';
import { upstreamOptimizer } from '../runtime/voco/config';

interface BuildGraphArgs {
  preset: VocoPreset;
  'feature-size'?: number;
  roi: number;
  'batch-size': number;
  'sw-batch-size': number;
  'base-crops': number;
  'drop-path-rate': number;
  'feature-dropout': number;
  'encoder-batch': number;
  optimizer: 'adamw' | 'adam' | 'sgd';
  'weight-decay': number;
  seed: number;
  'initial-weights': boolean;
  out: string;
}

/** `voco build-graph`: the VoCo training artifacts for one model size and batch layout. */
export const buildGraphCommand: CommandModule<object, BuildGraphArgs> = {
  command: 'build-graph',
  describe: 'write the VoCo training, eval, optimizer and encoder models, the manifest and initial weights',
  builder: (yargs: Argv) =>
    yargs
      .option('preset', { choices: Object.keys(PRESET_FEATURE_SIZE) as VocoPreset[], default: 'B' as VocoPreset, describe: 'model size: tiny (12), B (48), L (96), H (192)' })
      .option('feature-size', { type: 'number', describe: 'feature size (a multiple of 12), instead of the preset\'s' })
      .option('roi', { type: 'number', default: 64, describe: 'side of the cubic crops (a multiple of 32)' })
      .option('batch-size', { type: 'number', default: 1, describe: 'volumes per step' })
      .option('sw-batch-size', { type: 'number', default: 1, describe: 'random crops per volume' })
      .option('base-crops', { type: 'number', default: 9, describe: 'base crops per volume (3x3)' })
      .option('drop-path-rate', { type: 'number', default: 0, describe: 'stochastic depth rate of the Swin blocks' })
      .option('feature-dropout', { type: 'number', default: 0.2, describe: 'probability of dropping an embedding row before the student head (0: off)' })
      .option('encoder-batch', { type: 'number', default: 1, describe: 'crops per run of encoder.onnx' })
      .option('optimizer', { choices: ['adamw', 'adam', 'sgd'] as const, default: 'adamw' as const, describe: 'optimizer of optimizer_model.onnx' })
      .option('weight-decay', { type: 'number', default: 1e-2, describe: 'weight decay of the optimizer (decoupled for adamw: PyTorch\'s default 1e-2, as upstream)' })
      .option('seed', { type: 'number', default: 0, describe: 'seed of the initial weights' })
      .option('initial-weights', { type: 'boolean', default: true, describe: 'write initial_weights.safetensors (upstream state-dict names)' })
      .option('out', { type: 'string', demandOption: true, describe: 'artifact folder (created if missing)' }) as unknown as Argv<BuildGraphArgs>,
  handler: (args) => {
    const options = resolveVocoOptions({
      preset: args.preset,
      featureSize: args['feature-size'],
      roi: args.roi,
      batchSize: args['batch-size'],
      swBatchSize: args['sw-batch-size'],
      baseCrops: args['base-crops'],
      dropPathRate: args['drop-path-rate'],
      featureDropout: args['feature-dropout'],
    });
    if (!(Number.isInteger(args['encoder-batch']) && args['encoder-batch'] >= 1)) {
      throw new VocoModelOptionError(`--encoder-batch must be a positive integer, got ${args['encoder-batch']}`);
    }
    const started = Date.now();
    writeVocoArtifacts(args.out, options, {
      optimizer: upstreamOptimizer(args.optimizer, args['weight-decay']),
      encoderBatch: args['encoder-batch'],
      seed: args['initial-weights'] ? args.seed : undefined,
    });
    process.stdout.write(`wrote ${args.out} (feature size ${options.featureSize}, ${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  },
};
