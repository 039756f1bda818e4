import type { Argv, CommandModule } from 'yargs';
import { UserError } from '../common/user-error';
import { describeFeatureSize, convertVocoWeights } from '../graph/models/voco/weight-files';
import { PRESET_FEATURE_SIZE, VocoPreset } from '../graph/models/voco/options';
import { SWINUNETR_MODEL, convertSwinUnetrWeights, isSwinUnetrStateDict, readWeightSource } from '../graph/models/swinunetr/weights';

const MODELS = ['voco', SWINUNETR_MODEL] as const;

interface ImportWeightsArgs {
  file: string;
  out: string;
  model?: (typeof MODELS)[number];
  preset?: VocoPreset;
  'feature-size'?: number;
  'in-channels'?: number;
  'out-channels'?: number;
  strict: boolean;
  seed: number;
}

/** An import-weights option that does not apply to the model chosen. */
export class ImportWeightsOptionError extends UserError {}

/**
 * `voco import-weights`: any supported weight file to a checkpoint (or MONAI/upstream safetensors / .pt), for VoCo
 * pre-training or, for a SwinUNETR state dict (decoders or `out` present) or `--model swinunetr`, for fine-tuning.
 */
export const importWeightsCommand: CommandModule<object, ImportWeightsArgs> = {
  command: 'import-weights <file>',
  describe: 'read VoCo or SwinUNETR weights (.pt/.pth, .safetensors, .ckpt, .onnx, a logdir), report what loads as PyTorch does, write a checkpoint',
  builder: (yargs: Argv) =>
    yargs
      .positional('file', { type: 'string', demandOption: true, describe: 'weight file: PyTorch .pt/.pth (zip or legacy), .safetensors, .ckpt, encoder.onnx, or a training logdir' })
      .option('out', { type: 'string', demandOption: true, describe: '.ckpt (for train/finetune --init-from and grad --weights), or .safetensors / .pt with upstream names' })
      .option('model', { choices: MODELS, describe: 'model to import into (default: swinunetr when the file has decoders or an out layer, else voco)' })
      .option('preset', { choices: Object.keys(PRESET_FEATURE_SIZE), describe: 'VoCo: model the file must fit (default: inferred from the file)' })
      .option('feature-size', { type: 'number', describe: 'VoCo: feature size the file must have (instead of --preset)' })
      .option('in-channels', { type: 'number', describe: "SwinUNETR: input channels (default: the file's; others start the patch embedding and encoder1 fresh)" })
      .option('out-channels', { type: 'number', describe: "SwinUNETR: classes with the background (default: the file's out layer)" })
      .option('strict', { type: 'boolean', default: false, describe: 'missing, mis-shaped or unexpected keys are an error (exit 2, nothing written)' })
      .option('seed', { type: 'number', default: 0, describe: 'seed of the fresh values given to what the file lacks' }) as unknown as Argv<ImportWeightsArgs>,
  handler: (args) => {
    const read = readWeightSource(args.file);
    const model = args.model ?? (isSwinUnetrStateDict(read.tensors) ? SWINUNETR_MODEL : 'voco');
    if (model === SWINUNETR_MODEL) {
      if (args.preset !== undefined || args['feature-size'] !== undefined) {
        throw new ImportWeightsOptionError('--preset and --feature-size apply to VoCo; a SwinUNETR import takes the feature size of the file');
      }
      const { report, options } = convertSwinUnetrWeights(args.file, args.out, {
        read,
        inChannels: args['in-channels'],
        outChannels: args['out-channels'],
        strict: args.strict,
        seed: args.seed,
      });
      process.stdout.write(
        `read ${report.file}: ${report.fileTensors} tensors; SwinUNETR ${describeFeatureSize(options.featureSize)}, ${options.inChannels} input channel(s), ${options.outChannels} classes\n`,
      );
      if (report.pytorch) process.stderr.write(`warning: ${report.pytorch}\n`);
      process.stdout.write(`${report.summary}\n`);
      process.stdout.write(`wrote ${args.out}\n`);
      return;
    }
    if (args['in-channels'] !== undefined || args['out-channels'] !== undefined) {
      throw new ImportWeightsOptionError('--in-channels and --out-channels apply to SwinUNETR (add --model swinunetr)');
    }
    const imported = convertVocoWeights(read.file, args.out, {
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
