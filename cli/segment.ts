import type { Argv, CommandModule } from 'yargs';
import { UserError } from '../common/user-error';
import type { DatalistKey } from '../data/datalist';
import { FAMILIES, Family } from '../data/pipeline';
import { PREDICTION_SUFFIX } from '../data/prediction-name';
import { BLEND_MODES, BlendMode } from '../runtime/segment/importance-map';
import { isSpacing } from '../graph/models/swinunetr/segmenter-file';
import { DEFAULT_SEGMENT_FAMILY, choosePreprocessing } from '../runtime/segment/preprocessing';
import { segmentFiles, resolveSegmentInputs } from '../runtime/segment/segment-files';
import { openSegmenter } from '../runtime/segment/segmenter-source';
import { EXECUTION_PROVIDERS, ExecutionProvider } from '../runtime/session/providers';

export interface SegmentArgs {
  images: string[];
  model: string;
  out: string;
  list: DatalistKey;
  roi?: number;
  overlap: number;
  mode: BlendMode;
  'sw-batch-size': number;
  family?: Family;
  spacing?: number[];
  ep: ExecutionProvider;
  'device-id'?: number;
  threads?: number;
  png: boolean;
}

export const segmentCommand: CommandModule<object, SegmentArgs> = {
  command: 'segment <images..>',
  describe: `label maps (<image name>${PREDICTION_SUFFIX}, on each scan's own grid) from a fine-tuned SwinUNETR by sliding-window inference`,
  builder: (yargs: Argv) =>
    yargs
      .positional('images', { type: 'string', array: true, demandOption: true, describe: 'CT scans (.nii/.nii.gz), folders of them, or Decathlon datalist JSONs' })
      .option('model', { type: 'string', demandOption: true, describe: 'fine-tuning checkpoint (.ckpt), segmenter.onnx, or a SwinUNETR state dict (.pt/.pth/.safetensors, MONAI names)' })
      .option('out', { type: 'string', demandOption: true, describe: 'folder to write the label maps into' })
      .option('list', { choices: ['validation', 'test', 'training'] as const, default: 'validation' as const, describe: "which list of a datalist's images to segment" })
      .option('roi', { type: 'number', describe: 'window side (a multiple of 32)', defaultDescription: "the checkpoint's training roi, else 96; a segmenter.onnx its own" })
      .option('overlap', { type: 'number', default: 0.75, describe: 'fraction of the window shared by neighbours (upstream validation: 0.75)' })
      .option('mode', { choices: BLEND_MODES, default: 'constant' as const, describe: 'blending of overlapping windows' })
      .option('sw-batch-size', { type: 'number', default: 2, describe: 'windows per model run (an older segmenter.onnx with a fixed batch runs its own)' })
      .option('family', { choices: FAMILIES, describe: 'preprocessing family: HU window, and the spacing when neither the model nor --spacing gives one', defaultDescription: `the model's record, else ${DEFAULT_SEGMENT_FAMILY}` })
      .option('spacing', { type: 'array', number: true, describe: 'voxel size in mm (x y z) the scans are resampled to', defaultDescription: "the model's record (the fine-tuning run's), else the family's" })
      .option('ep', { choices: EXECUTION_PROVIDERS, default: 'cpu' as const, describe: 'ONNX Runtime execution provider' })
      .option('device-id', { type: 'number', describe: 'GPU index for cuda' })
      .option('threads', { type: 'number', describe: 'CPU threads of ONNX Runtime (default: one per core)' })
      .option('png', { type: 'boolean', default: false, describe: 'also write <image name>_seg.png: axial, coronal and sagittal slices through the labels, with a legend' }) as unknown as Argv<SegmentArgs>,
  handler: async (args) => {
    const swBatchSize = args['sw-batch-size'];
    if (!Number.isInteger(swBatchSize) || swBatchSize < 1) throw new UserError(`--sw-batch-size must be a positive integer, got ${swBatchSize}`);
    if (!(args.overlap >= 0 && args.overlap < 1)) throw new UserError(`--overlap must be in [0, 1), got ${args.overlap}`);
    const spacing = args.spacing;
    if (spacing !== undefined && !isSpacing(spacing)) throw new UserError(`--spacing must be three voxel sizes in mm > 0 (x y z), got ${spacing.join(' ')}`);
    const files = resolveSegmentInputs(args.images, args.list);
    const model = await openSegmenter(args.model, { roi: args.roi, provider: args.ep, deviceId: args['device-id'], threads: args.threads });
    const err = process.stderr;
    try {
      const preprocessing = choosePreprocessing(model.preprocessing, { family: args.family, spacing });
      err.write(`${preprocessing.description}\nmodel ${model.description}\nsegmenting ${files.length} scan(s) into ${args.out}\n`);
      const options = { outDir: args.out, preprocessing, overlap: args.overlap, mode: args.mode, swBatchSize, png: args.png };
      const outcomes = await segmentFiles(files, model, options, (o, i) => {
        const head = `[${i + 1}/${files.length}]`;
        if (o.problem !== undefined) err.write(`${head} failed: ${o.problem}\n`);
        else process.stdout.write(`${head} wrote ${o.output}${o.picture ? ` and ${o.picture}` : ''} (${o.windows} windows)\n`);
      });
      const failed = outcomes.filter((o) => o.problem !== undefined);
      const summary = `segmented ${outcomes.length - failed.length} of ${outcomes.length} scan(s)`;
      if (failed.length) throw new UserError(`${summary}; ${failed.length} failed: ${failed.map((o) => o.file).join(', ')}`);
      process.stdout.write(`${summary}\n`);
    } finally {
      await model.close();
    }
  },
};
