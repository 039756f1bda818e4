/**
 * The segmenter as a self-contained ONNX file: SwinUNETR's forward model (image [batch, Cin, r, r, r] -> logits
 * [batch, Cout, r, r, r], `batch` symbolic: any number of windows per run) with trained weights baked in as
 * initialisers, and the facts a user of the file needs in its metadata_props (the roi it was built for, the class
 * names, `voco.batch` "dynamic", and the preprocessing its weights were trained on: family and voxel size), so that
 * the file alone segments a scan as the training run saw its volumes. Files written before the batch was symbolic
 * record their fixed batch there.
 */
import { ConstantData } from '../../core/graph';
import { writeForwardModel } from '../../onnx/artifacts';
import { ExternalDataOptions } from '../../onnx/external-data';
import { ModelEntry } from '../../onnx/manifest';
import { readModelMetadata } from '../../onnx/metadata';
import { SwinUnetrOptionError, SwinUnetrOptions } from './options';
import { segmenterForward } from './artifacts';

/** Keys of the segmenter's metadata_props. */
export const SEGMENTER_METADATA = {
  model: 'voco.model',
  batch: 'voco.batch',
  roi: 'voco.roi',
  classNames: 'voco.class_names',
  family: 'voco.family',
  spacing: 'voco.spacing_mm',
} as const;
export const SEGMENTER_MODEL_KIND = 'swinunetr-segmenter';
/** `voco.batch` of a file whose batch axis is symbolic. */
export const DYNAMIC_BATCH = 'dynamic';

/** How scans are preprocessed for the weights: the family (its HU window) and the voxel size in mm (R, A, S). */
export interface SegmenterPreprocessing {
  readonly family: string;
  readonly spacing: readonly [number, number, number];
}

/** What the metadata records besides the roi. */
export interface SegmenterRecord {
  /** Class names by class index (written as a Decathlon `labels` table, JSON `{"0": "background", ...}`). */
  readonly classNames?: ReadonlyMap<number, string>;
  readonly preprocessing?: SegmenterPreprocessing;
}

export interface SegmenterFileOptions extends SegmenterRecord {
  readonly externalData?: ExternalDataOptions;
}

/** The metadata_props of a segmenter with a symbolic batch built for windows of `roi`^3. */
export function segmenterMetadata(roi: number, record: SegmenterRecord = {}): Record<string, string> {
  const { classNames, preprocessing } = record;
  return {
    [SEGMENTER_METADATA.model]: SEGMENTER_MODEL_KIND,
    [SEGMENTER_METADATA.batch]: DYNAMIC_BATCH,
    [SEGMENTER_METADATA.roi]: String(roi),
    ...(classNames ? { [SEGMENTER_METADATA.classNames]: JSON.stringify(Object.fromEntries(classNames)) } : {}),
    ...(preprocessing
      ? { [SEGMENTER_METADATA.family]: preprocessing.family, [SEGMENTER_METADATA.spacing]: JSON.stringify(preprocessing.spacing) }
      : {}),
  };
}

/**
 * Writes the segmenter of `options` (its roi, in and out channels, feature size) with every parameter taken from
 * `values` (by MONAI state-dict name) to `file`; of the class names, those of its classes. A parameter without a value of its shape is a
 * SwinUnetrOptionError naming `source` and the key.
 */
export function writeSegmenterModel(
  file: string,
  options: Pick<SwinUnetrOptions, 'featureSize' | 'inChannels' | 'outChannels' | 'roi'>,
  values: ReadonlyMap<string, Float32Array>,
  source: string,
  fileOptions: SegmenterFileOptions = {},
): ModelEntry {
  const { seg, spec } = segmenterForward(options);
  const weights = new Map<string, ConstantData>();
  for (const p of seg.graph.parameters) {
    const v = values.get(p.tensor.name);
    const size = p.tensor.shape.reduce((a, b) => a * b, 1);
    if (!v) throw new SwinUnetrOptionError(`${source}: has no value for ${p.tensor.name}`);
    if (v.length !== size) throw new SwinUnetrOptionError(`${source}: ${p.tensor.name} holds ${v.length} values, the model needs [${p.tensor.shape.join(', ')}]`);
    weights.set(p.tensor.name, v);
  }
  const { externalData, classNames, preprocessing } = fileOptions;
  const names = classNames && new Map([...classNames].filter(([k]) => k < options.outChannels));
  return writeForwardModel(file, { ...spec, weights, externalData, metadata: segmenterMetadata(options.roi, { classNames: names, preprocessing }) });
}

/**
 * What a segmenter file's metadata says of it; fields are absent for a model written elsewhere or before they were
 * recorded. A preprocessing record that is half there or unreadable is a SwinUnetrOptionError naming the file.
 */
export interface SegmenterFileFacts extends SegmenterRecord {
  /** The fixed batch of a file written before the batch axis was symbolic; absent for a symbolic one. */
  readonly batch?: number;
  readonly roi?: number;
}

export function readSegmenterFacts(file: string): SegmenterFileFacts {
  const meta = readModelMetadata(file);
  const number = (key: string) => (meta[key] !== undefined && Number.isInteger(Number(meta[key])) ? Number(meta[key]) : undefined);
  let classNames: Map<number, string> | undefined;
  try {
    const table = meta[SEGMENTER_METADATA.classNames] && (JSON.parse(meta[SEGMENTER_METADATA.classNames]) as Record<string, unknown>);
    if (table) classNames = new Map(Object.entries(table).filter(([, v]) => typeof v === 'string').map(([k, v]) => [Number(k), v as string]));
  } catch {
    classNames = undefined; // names are a courtesy for pictures; a model without readable ones draws "class N"
  }
  const preprocessing = readPreprocessing(file, meta[SEGMENTER_METADATA.family], meta[SEGMENTER_METADATA.spacing]);
  return { batch: number(SEGMENTER_METADATA.batch), roi: number(SEGMENTER_METADATA.roi), ...(classNames ? { classNames } : {}), ...(preprocessing ? { preprocessing } : {}) };
}

/** The recorded preprocessing; a half or unreadable record is an error, as segmenting without it would be wrong. */
function readPreprocessing(file: string, family: string | undefined, spacing: string | undefined): SegmenterPreprocessing | undefined {
  if (family === undefined && spacing === undefined) return undefined;
  const { family: fk, spacing: sk } = SEGMENTER_METADATA;
  if (!family || spacing === undefined) throw new SwinUnetrOptionError(`${file}: its metadata has ${family ? fk : sk} without ${family ? sk : fk}`);
  let sizes: unknown;
  try {
    sizes = JSON.parse(spacing);
  } catch {
    sizes = undefined;
  }
  if (!isSpacing(sizes)) throw new SwinUnetrOptionError(`${file}: metadata ${sk} is ${JSON.stringify(spacing)}, not three voxel sizes in mm > 0`);
  return { family, spacing: sizes };
}

/** Three finite voxel sizes > 0 (mm). */
export function isSpacing(value: unknown): value is [number, number, number] {
  return Array.isArray(value) && value.length === 3 && value.every((s) => typeof s === 'number' && Number.isFinite(s) && s > 0);
}
