import type { Argv, CommandModule } from 'yargs';
import { UserError } from '../common/user-error';
import { EXPORT_FORMATS, ExportFormat, describeFeatureSize, exportVoco } from '../graph/models/voco/weight-files';

/** A `voco export --formats` list naming something we do not write. */
export class ExportFormatError extends UserError {}

interface ExportArgs {
  source: string;
  out: string;
  formats: string;
  roi: number;
  'encoder-batch': number;
}

function parseFormats(list: string): ExportFormat[] {
  const formats = list.split(',').map((f) => f.trim()).filter((f) => f.length > 0);
  const unknown = formats.filter((f) => !(EXPORT_FORMATS as readonly string[]).includes(f));
  if (unknown.length || !formats.length) throw new ExportFormatError(`--formats ${list}: expected a comma-separated list of ${EXPORT_FORMATS.join(', ')}`);
  return formats as ExportFormat[];
}

/** `voco export`: a checkpoint or weight file to encoder.onnx, upstream safetensors and an upstream `.pt`. */
export const exportCommand: CommandModule<object, ExportArgs> = {
  command: 'export <source>',
  describe: 'write encoder.onnx (self-contained), voco_weights.safetensors and voco_weights.pt (upstream form) from a checkpoint or weight file',
  builder: (yargs: Argv) =>
    yargs
      .positional('source', { type: 'string', demandOption: true, describe: 'training checkpoint (.ckpt) or weight file (.pt/.pth, .safetensors)' })
      .option('out', { type: 'string', demandOption: true, describe: 'folder to write into' })
      .option('formats', { type: 'string', default: EXPORT_FORMATS.join(','), describe: 'what to write' })
      .option('roi', { type: 'number', default: 64, describe: "side of the encoder's input crops (a multiple of 32)" })
      .option('encoder-batch', { type: 'number', default: 1, describe: "crops per encoder run (the encoder's batch dimension)" }) as unknown as Argv<ExportArgs>,
  handler: (args) => {
    const { imported, written } = exportVoco(args.source, args.out, {
      formats: parseFormats(args.formats),
      roi: args.roi,
      encoderBatch: args['encoder-batch'],
    });
    process.stdout.write(`read ${args.source}: ${describeFeatureSize(imported.featureSize)}\n`);
    for (const file of written) process.stdout.write(`wrote ${file}\n`);
  },
};
