import type { Argv, CommandModule } from 'yargs';
import { UserError } from '../common/user-error';
import { exportSwinUnetr } from '../graph/models/swinunetr/export';
import { isSwinUnetrStateDict, readWeightSource } from '../graph/models/swinunetr/weights';
import { EXPORT_FORMATS, ExportFormat, describeFeatureSize, exportVoco } from '../graph/models/voco/weight-files';
import { describePreprocessing } from '../runtime/segment/preprocessing';
import { DEFAULT_SEGMENT_ROI, RecordedFacts, recordedRunFacts } from '../runtime/segment/segmenter-source';

/** A `voco export --formats` list naming something we do not write. */
export class ExportFormatError extends UserError {}

interface ExportArgs {
  source: string;
  out: string;
  formats: string;
  roi?: number;
  'encoder-batch': number;
}

const VOCO_ENCODER_ROI = 64;

function parseFormats(list: string): ExportFormat[] {
  const formats = list.split(',').map((f) => f.trim()).filter((f) => f.length > 0);
  const unknown = formats.filter((f) => !(EXPORT_FORMATS as readonly string[]).includes(f));
  if (unknown.length || !formats.length) throw new ExportFormatError(`--formats ${list}: expected a comma-separated list of ${EXPORT_FORMATS.join(', ')}`);
  return formats as ExportFormat[];
}

/**
 * `voco export`: VoCo weights to encoder.onnx and the upstream state dict; a fine-tuned SwinUNETR (told by its
 * decoder and output keys) to segmenter.onnx and MONAI's state dict.
 */
export const exportCommand: CommandModule<object, ExportArgs> = {
  command: 'export <source>',
  describe: 'VoCo weights: encoder.onnx, voco_weights.safetensors/.pt; a fine-tuned SwinUNETR: segmenter.onnx, swinunetr_weights.safetensors/.pt',
  builder: (yargs: Argv) =>
    yargs
      .positional('source', { type: 'string', demandOption: true, describe: 'training or fine-tuning checkpoint (.ckpt) or weight file (.pt/.pth, .safetensors)' })
      .option('out', { type: 'string', demandOption: true, describe: 'folder to write into' })
      .option('formats', { type: 'string', default: EXPORT_FORMATS.join(','), describe: 'what to write' })
      .option('roi', { type: 'number', describe: "side of the model's input windows (a multiple of 32)", defaultDescription: `VoCo ${VOCO_ENCODER_ROI}; SwinUNETR the checkpoint's training roi, else ${DEFAULT_SEGMENT_ROI}` })
      .option('encoder-batch', { type: 'number', default: 1, describe: "crops per encoder run (the encoder's batch dimension; the segmenter's is symbolic)" }) as unknown as Argv<ExportArgs>,
  handler: (args) => {
    const formats = parseFormats(args.formats);
    const read = readWeightSource(args.source);
    if (isSwinUnetrStateDict(read.tensors)) {
      const recorded = recordedRunFacts(read.file);
      const { options, written } = exportSwinUnetr(args.source, args.out, {
        formats,
        roi: args.roi ?? recorded.roi ?? DEFAULT_SEGMENT_ROI,
        classNames: recorded.classNames,
        preprocessing: recorded.preprocessing,
        read,
      });
      const o = options;
      process.stdout.write(`read ${read.file}: SwinUNETR ${describeFeatureSize(o.featureSize)}, ${o.inChannels} channel(s) -> ${o.outChannels} classes; segmenter roi ${o.roi}, any number of windows per run\n`);
      if (formats.includes('onnx')) process.stdout.write(`segmenter metadata: ${describeRecord(recorded, read.file)}\n`);
      for (const file of written) process.stdout.write(`wrote ${file}\n`);
      return;
    }
    const { imported, written } = exportVoco(args.source, args.out, { formats, roi: args.roi ?? VOCO_ENCODER_ROI, encoderBatch: args['encoder-batch'] });
    process.stdout.write(`read ${args.source}: ${describeFeatureSize(imported.featureSize)}\n`);
    for (const file of written) process.stdout.write(`wrote ${file}\n`);
  },
};

/** What the segmenter's metadata records beyond the roi, in a line. */
function describeRecord(recorded: RecordedFacts, file: string): string {
  const p = recorded.preprocessing;
  const names = recorded.classNames ? `class names of ${recorded.classNames.size} classes` : 'no class names';
  if (!p) return `${names}, no preprocessing (${file} records no fine-tuning run: voco segment takes --family and --spacing, default the abdomen family's 1.5 mm)`;
  return `preprocessing ${describePreprocessing(p.family, p.spacing)} and ${names}, from ${p.from}`;
}
