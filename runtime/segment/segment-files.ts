/**
 * `voco segment` over a stream of scans: each one preprocessed as in fine-tuning, segmented by sliding-window
 * inference, argmax, brought back onto the scan's grid (MONAI Invertd, nearest) and written as a label map with the
 * scan's header geometry, `<name>_seg.nii.gz`, optionally with a picture. A scan that fails is reported in one line
 * and skipped; every file is written atomically, so a failure leaves nothing half-written.
 */
import * as fs from 'fs';
import * as path from 'path';
import { writeBytesAtomically } from '../../common/atomic-file';
import { UserError } from '../../common/user-error';
import { DatalistKey, listFiles, loadDecathlonList } from '../../data/datalist';
import { imageName, predictionFileName } from '../../data/prediction-name';
import { renderLabelSlices } from '../../data/render/label-slices';
import { writeLabelNifti } from '../../data/segmentation/label-map';
import { preprocessImageForInference } from '../../data/segmentation/preprocess';
import { invertLabels } from '../../data/transforms/invert';
import { WindowProgress } from '../observe/progress';
import type { BlendMode } from './importance-map';
import type { SegmentPreprocessing } from './preprocessing';
import type { OpenSegmenter } from './segmenter-source';
import { argmaxChannels, slidingWindowInference } from './sliding-window';

/** Inputs that cannot be segmented as a set (nothing to do, two scans that would write the same output). */
export class SegmentInputError extends UserError {}

const DATALIST = /\.json$/i;

/**
 * The scans named on the command line: NIfTI files as they are, folders as their .nii/.nii.gz files, datalist JSONs
 * as the image paths of list `key`. Two scans with the same name would overwrite each other's output: refused.
 */
export function resolveSegmentInputs(inputs: readonly string[], key: DatalistKey): string[] {
  const files = inputs.flatMap((input) => {
    if (!fs.existsSync(input)) throw new SegmentInputError(`${input}: no such file or folder`);
    if (fs.statSync(input).isDirectory()) return listFiles(input, `folder ${input}`);
    if (DATALIST.test(input)) return loadDecathlonList(input, { key });
    return [input];
  });
  const byOutput = new Map<string, string>();
  for (const file of files) {
    const out = predictionFileName(file);
    const other = byOutput.get(out);
    if (other !== undefined && path.resolve(other) !== path.resolve(file)) {
      throw new SegmentInputError(`${other} and ${file} would both write ${out}; segment them into different --out folders`);
    }
    byOutput.set(out, file);
  }
  const seen = new Set<string>();
  return files.filter((f) => !seen.has(path.resolve(f)) && seen.add(path.resolve(f)));
}

export interface SegmentOptions {
  readonly outDir: string;
  /** The chain every scan goes through (choosePreprocessing). */
  readonly preprocessing: Pick<SegmentPreprocessing, 'family' | 'params'>;
  readonly overlap: number;
  readonly mode: BlendMode;
  readonly swBatchSize: number;
  /** Also write `<name>_seg.png`: three slices through the labels with a legend. */
  readonly png: boolean;
  /** Progress lines; default stderr. */
  readonly stream?: NodeJS.WriteStream;
}

export interface SegmentOutcome {
  readonly file: string;
  /** The label map written; absent when the scan failed. */
  readonly output?: string;
  readonly picture?: string;
  /** Why the scan failed, one line. */
  readonly problem?: string;
  /** Voxels per class on the scan's grid. */
  readonly counts?: readonly number[];
  /** Windows the sliding window ran over the preprocessed scan. */
  readonly windows?: number;
}

/** Segments `files` one after the other; `report` receives each outcome as it is known. */
export async function segmentFiles(
  files: readonly string[],
  model: OpenSegmenter,
  options: SegmentOptions,
  report: (outcome: SegmentOutcome, index: number) => void,
): Promise<SegmentOutcome[]> {
  if (model.inChannels !== 1) throw new SegmentInputError(`the model takes ${model.inChannels} image channels; voco segment reads single-channel scans`);
  fs.mkdirSync(options.outDir, { recursive: true });
  const outcomes: SegmentOutcome[] = [];
  for (const [i, file] of files.entries()) {
    let outcome: SegmentOutcome;
    try {
      outcome = await segmentFile(file, model, options, `[${i + 1}/${files.length}] ${imageName(file)}`);
    } catch (error) {
      outcome = { file, problem: (error as Error).message.split('\n')[0] };
    }
    outcomes.push(outcome);
    report(outcome, i);
  }
  return outcomes;
}

async function segmentFile(file: string, model: OpenSegmenter, options: SegmentOptions, label: string): Promise<SegmentOutcome> {
  const { volume, record, header } = preprocessImageForInference(file, options.preprocessing.family, options.preprocessing.params);
  let progress: WindowProgress | undefined;
  let windows = 0;
  const started = Date.now();
  const logits = await slidingWindowInference({ data: volume.data, channels: 1, shape: volume.shape }, model.predictor.predict, {
    roi: model.roi,
    overlap: options.overlap,
    mode: options.mode,
    swBatchSize: model.predictor.fixedBatch ?? options.swBatchSize,
    onProgress: (done, total) => {
      windows = total;
      progress ??= new WindowProgress(label, total, options.stream, started);
      progress.update(done, total);
    },
  }).finally(() => progress?.stop());
  const classes = argmaxChannels(logits);
  const labels = Float32Array.from(classes);
  const inverted = invertLabels({ data: labels, shape: volume.shape }, record);
  const output = path.join(options.outDir, predictionFileName(file));
  const picture = options.png ? path.join(options.outDir, `${imageName(file)}_seg.png`) : undefined;
  // The picture first: the label map is the result, and it appears only once everything for the scan succeeded.
  if (picture) {
    const names = Object.fromEntries([...(model.classNames ?? new Map())].map(([k, v]) => [String(k), v]));
    writeBytesAtomically(picture, renderLabelSlices(volume, { data: labels, shape: volume.shape, affine: volume.affine }, names, [0, 1]));
  }
  try {
    writeLabelNifti(output, inverted, header);
  } catch (error) {
    if (picture) fs.rmSync(picture, { force: true });
    throw error;
  }
  const counts = new Array<number>(model.outChannels).fill(0);
  for (const c of inverted.data) counts[c]++;
  return { file, output, ...(picture ? { picture } : {}), counts, windows };
}
