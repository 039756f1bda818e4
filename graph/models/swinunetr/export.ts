/**
 * `voco export` of a fine-tuned SwinUNETR: `segmenter.onnx` (self-contained, weights as initialisers, external
 * data above 2 GB; any number of windows per run) and MONAI's state dict as `swinunetr_weights.safetensors`
 * and `swinunetr_weights.pt` (`{"state_dict": ...}`, what `SwinUNETR(use_v2=True).load_state_dict` takes).
 */
import * as fs from 'fs';
import * as path from 'path';
import { ExternalDataOptions } from '../../onnx/external-data';
import { EXPORT_FORMATS, ExportFormat, writeStateDictExports } from '../weight-exports';
import { resolveSwinUnetrOptions, SwinUnetrOptions } from './options';
import { SEGMENTER_MODEL } from './artifacts';
import { SegmenterRecord, writeSegmenterModel } from './segmenter-file';
import { SwinUnetrWeightError, WeightSource, importSwinUnetrWeights, inferSwinUnetrOptions, readWeightSource, swinUnetrStateDict } from './weights';

export const SEGMENTER_FILE = `${SEGMENTER_MODEL}.onnx`;
const STATE_DICT_BASE = 'swinunetr_weights';

/** The class names and preprocessing of the weights' training, when known, go into the segmenter's metadata. */
export interface SwinUnetrExportOptions extends SegmenterRecord {
  readonly formats?: readonly ExportFormat[];
  /** Side of the segmenter's windows (a multiple of 32). */
  readonly roi: number;
  readonly externalData?: ExternalDataOptions;
  /** The source already read. */
  readonly read?: WeightSource;
}

/**
 * Exports a SwinUNETR weight source (a fine-tuning checkpoint, a MONAI state dict) into `dir`. Every parameter
 * must come from the file: a segmentation model with a fresh layer is refused. Returns the model and the paths.
 */
export function exportSwinUnetr(source: string, dir: string, options: SwinUnetrExportOptions): { options: SwinUnetrOptions; written: string[] } {
  const formats = options.formats ?? EXPORT_FORMATS;
  const read = options.read ?? readWeightSource(source);
  const inferred = inferSwinUnetrOptions(read.tensors, read.file);
  if (inferred.outChannels === undefined) throw new SwinUnetrWeightError(`${read.file}: has no output layer (out.conv.conv.weight): not a segmentation model`);
  const o = resolveSwinUnetrOptions({ ...inferred, outChannels: inferred.outChannels, roi: options.roi, batchSize: 1 });
  const { values } = importSwinUnetrWeights(source, o, { seed: 0, strict: true, read });
  fs.mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  if (formats.includes('onnx')) {
    const file = path.join(dir, SEGMENTER_FILE);
    const { classNames, preprocessing, externalData } = options;
    const entry = writeSegmenterModel(file, o, values, read.file, { classNames, preprocessing, externalData });
    written.push(file, ...(entry.dataFile ? [path.join(dir, entry.dataFile)] : []));
  }
  written.push(...writeStateDictExports(dir, STATE_DICT_BASE, formats, () => swinUnetrStateDict(o, values)));
  return { options: o, written };
}
