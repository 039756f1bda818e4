import type { Argv, CommandModule } from 'yargs';
import { describeFeatureSize, convertVocoWeights } from '../graph/models/voco/weight-files';
import { PRESET_FEATURE_SIZE, VocoPreset } from '../graph/models/voco/options';

interface ImportWeightsArgs {
  file: string;
  out: string;
  preset?: VocoPreset;
  'feature-size'?: number;
  strict: boolean;
  seed: number;
}

/** `voco import-weights`: any supported weight file to a checkpoint (or upstream safetensors / .pt) for this model. */
export const importWeightsCommand: CommandModule<object, ImportWeightsArgs> = {
  command: 'import-weights <file>',
  describe: 'read VoCo weights (.pt/.pth, .safetensors, .ckpt), report missing/unexpected keys as PyTorch does, write a checkpoint',
  builder: (yargs: Argv) =>
    yargs
      .positional('file', { type: 'string', demandOption: true, describe: 'weight file: PyTorch .pt/.pth (zip or legacy), .safetensors or .ckpt' })
      .option('out', { type: 'string', demandOption: true, describe: '.ckpt (for train --init-from and grad --weights), or .safetensors / .pt with upstream names' })
      .option('preset', { choices: Object.keys(PRESET_FEATURE_SIZE), describe: 'model the file must fit (default: inferred from the file)' })
      .option('feature-size', { type: 'number', describe: 'feature size the file must have (instead of --preset)' })
      .option('strict', { type: 'boolean', default: false, describe: 'missing or unexpected keys are an error (exit 2, nothing written)' })
      .option('seed', { type: 'number', default: 0, describe: 'seed of the fresh values given to what the file lacks' }) as unknown as Argv<ImportWeightsArgs>,
  handler: (args) => {
    const imported = convertVocoWeights(args.file, args.out, {
      preset: args.preset,
      featureSize: args['feature-size'],
      strict: args.strict,
      seed: args.seed,
    });
    const total = imported.values.size + imported.fresh.length;
    process.stdout.write(`read ${args.file}: ${imported.fileTensors} tensors, ${describeFeatureSize(imported.featureSize)}\n`);
    if (imported.report) process.stderr.write(`warning: ${imported.report}\n`);
    const fresh = imported.fresh.length ? `; ${imported.fresh.length} freshly initialised (seed ${args.seed})` : '';
    process.stdout.write(`matched ${imported.values.size} of ${total} parameter and state tensors${fresh}\n`);
    process.stdout.write(`wrote ${args.out}\n`);
  },
};
