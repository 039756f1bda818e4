/**
 * The segmenter as a self-contained ONNX file: SwinUNETR's forward model (image [batch, Cin, r, r, r] -> logits
 * [batch, Cout, r, r, r], `batch` symbolic: any number of windows per run) with trained weights baked in as
 * initialisers, and the facts a user of the file needs in its metadata_props (the roi it was built for, the class
 * names, `voco.batch` "dynamic"). Files written before the batch was symbolic record their fixed batch there.
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
} as const;
export const SEGMENTER_MODEL_KIND = 'swinunetr-segmenter';
/** `voco.batch` of a file whose batch axis is symbolic. */
export const DYNAMIC_BATCH = 'dynamic';

export interface SegmenterFileOptions {
  /** Class names by class index (written as a JSON object `{"0": "background", ...}`). */
  readonly classNames?: ReadonlyMap<number, string>;
  readonly externalData?: ExternalDataOptions;
}

/**
 * Writes the segmenter of `options` (its roi, in and out channels, feature size) with every parameter taken from
 * `values` (by MONAI state-dict name) to `file`. A parameter without a value of its shape is a
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
  const names = fileOptions.classNames && JSON.stringify(Object.fromEntries(fileOptions.classNames));
  return writeForwardModel(file, {
    ...spec,
    weights,
    externalData: fileOptions.externalData,
    metadata: {
      [SEGMENTER_METADATA.model]: SEGMENTER_MODEL_KIND,
      [SEGMENTER_METADATA.batch]: DYNAMIC_BATCH,
      [SEGMENTER_METADATA.roi]: String(options.roi),
      ...(names ? { [SEGMENTER_METADATA.classNames]: names } : {}),
    },
  });
}

/** What a segmenter file's metadata says of it; fields are absent for a model written elsewhere. */
export interface SegmenterFileFacts {
  /** The fixed batch of a file written before the batch axis was symbolic; absent for a symbolic one. */
  readonly batch?: number;
  readonly roi?: number;
  readonly classNames?: ReadonlyMap<number, string>;
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
  return { batch: number(SEGMENTER_METADATA.batch), roi: number(SEGMENTER_METADATA.roi), ...(classNames ? { classNames } : {}) };
}
