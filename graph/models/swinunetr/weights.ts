/**
 * SwinUNETR weights in and out. In: any weight source users bring for fine-tuning (our checkpoints, a pre-training
 * logdir, its encoder.onnx, upstream VoCo `.pt` files, MONAI/upstream fine-tuned state dicts) matched against the
 * model under MONAI's names, keeping what fits and reporting the rest, never silently. Out: MONAI's state dict as
 * `.pt` or `.safetensors`, or a checkpoint whose `parameters` group holds it.
 */
import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../../../common/user-error';
import { PARAMETERS_GROUP, checkpointDir, latestCheckpoint, writeCheckpointFile } from '../../../io/checkpoint';
import { StateDictMismatchError, WeightFileError } from '../../../io/weights/errors';
import { writeSafetensors } from '../../../io/weights/safetensors';
import { ShapeMismatch, describeMismatch, matchStateDict, normaliseKey } from '../../../io/weights/state-dict';
import { NamedTensor, TensorMap, namedTensor } from '../../../io/weights/tensor-map';
import { writeTorchCheckpoint } from '../../../io/weights/torch-writer';
import { readOnnxInitializers } from '../../onnx/initializers';
import { StateDictEntry, stateDictEntries } from '../swinunetr-encoder';
import { ENCODER_FILE, SAFETENSORS_EXPORT_FILE, weightOutputExtension } from '../voco/weight-files';
import { checkRelativePositionIndex, exportVocoStateDict, freshVocoValues, readWeightFile } from '../voco/weights';
import { SegmenterGraph, buildSegmenterGraph } from './model';
import { SwinUnetrOptions, resolveSwinUnetrOptions } from './options';

/** Weights that cannot go into the SwinUNETR asked for (another feature size, no usable key). */
export class SwinUnetrWeightError extends UserError {}

export type WeightSourceKind = 'checkpoint' | 'safetensors' | 'torch' | 'onnx';

/** A weight source read: the file actually read (a logdir's newest checkpoint, ...) and its tensors. */
export interface WeightSource {
  /** What the user named: a file or a logdir. */
  readonly source: string;
  readonly file: string;
  readonly kind: WeightSourceKind;
  /** Under the file's names (torch files: already normalised as upstream's scripts do). */
  readonly tensors: TensorMap;
}

function kindOf(file: string): WeightSourceKind {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.ckpt') return 'checkpoint';
  if (ext === '.onnx') return 'onnx';
  if (ext === '.safetensors') return 'safetensors';
  return 'torch';
}

/**
 * The file a source names: itself, or for a logdir its newest readable checkpoint, else its exported
 * `voco_weights.safetensors`, else its `encoder.onnx`.
 */
export function resolveWeightSource(source: string): string {
  if (!fs.existsSync(source) || !fs.statSync(source).isDirectory()) return source;
  const candidates = [latestCheckpoint(checkpointDir(source)), path.join(source, SAFETENSORS_EXPORT_FILE), path.join(source, ENCODER_FILE)];
  const found = candidates.find((f): f is string => f !== undefined && fs.existsSync(f));
  if (!found) {
    throw new WeightFileError(source, `is a folder without weights: no checkpoint in checkpoints/, no ${SAFETENSORS_EXPORT_FILE}, no ${ENCODER_FILE}`);
  }
  return found;
}

/** Reads a weight source of any kind (see resolveWeightSource; formats as readWeightFile, plus ONNX initialisers). */
export function readWeightSource(source: string): WeightSource {
  const file = resolveWeightSource(source);
  const kind = kindOf(file);
  return { source, file, kind, tensors: kind === 'onnx' ? readOnnxInitializers(file) : readWeightFile(file) };
}

const PATCH_EMBED = 'swinViT.patch_embed.proj.weight';
const OUT_WEIGHT = 'out.conv.conv.weight';
/** The keys whose second axis is the input channels (MONAI's SwinUNETR, see the segmentation fixture README). */
const IN_CHANNEL_KEYS = new Set([PATCH_EMBED, 'encoder1.layer.conv1.conv.weight', 'encoder1.layer.conv3.conv.weight']);

const byNormalisedKey = (tensors: TensorMap): Map<string, NamedTensor> => new Map([...tensors.values()].map((t) => [normaliseKey(t.name), t]));

/** Whether the tensors are a SwinUNETR state dict (decoders or the output layer present) rather than VoCo's. */
export function isSwinUnetrStateDict(tensors: TensorMap): boolean {
  return [...byNormalisedKey(tensors).keys()].some((k) => /^decoder\d\./.test(k) || k.startsWith('out.'));
}

/**
 * What the tensors tell of the model: the feature size and input channels from the patch embedding, the classes
 * from `out.conv.conv.weight` when the file has the output layer.
 */
export function inferSwinUnetrOptions(tensors: TensorMap, file = 'weights'): Pick<SwinUnetrOptions, 'featureSize' | 'inChannels'> & { outChannels?: number } {
  const keys = byNormalisedKey(tensors);
  const patch = keys.get(PATCH_EMBED);
  if (!patch || patch.shape.length !== 5) throw new SwinUnetrWeightError(`${file}: has no ${PATCH_EMBED} [F, Cin, 2, 2, 2] (not VoCo/SwinUNETR weights?)`);
  const out = keys.get(OUT_WEIGHT);
  return { featureSize: patch.shape[0], inChannels: patch.shape[1], ...(out ? { outChannels: out.shape[0] } : {}) };
}

/** A file tensor left out because its shape differs from the model's; its parameter starts fresh. */
export interface SkippedWeight extends ShapeMismatch {
  /** Why, in words: "input channels 1 in the file, 4 in the model", ... */
  readonly reason: string;
}

/** What an import took from the file and what it did not, as load_state_dict(strict=False) would tell, and more. */
export interface WeightReport {
  readonly source: string;
  /** The file read (for a logdir: its newest checkpoint, or its exports). */
  readonly file: string;
  readonly kind: WeightSourceKind;
  /** Tensors the file holds (for ONNX: the initialisers that are model keys). */
  readonly fileTensors: number;
  /** Model parameters (graph names) given the file's values. */
  readonly loaded: string[];
  /** Model parameters the file lacks: fresh values (seeded). */
  readonly fresh: string[];
  /** File tensors whose shape differs from the model's: their parameters are fresh too. */
  readonly skipped: SkippedWeight[];
  /** Normalised file keys the model does not have, ignored. */
  readonly unexpected: string[];
  /** relative_position_index buffers of the file, each checked equal to the index this model computes. */
  readonly buffersChecked: number;
  readonly seed: number;
  /** The report in one line, for the command line. */
  readonly summary: string;
  /** What PyTorch's load_state_dict would say (missing, unexpected, size mismatch); empty when all matched. */
  readonly pytorch: string;
}

export interface SwinUnetrWeights {
  /** A value for every parameter of the graph, by MONAI name: the file's, fresh ones where it has none. */
  readonly values: Map<string, Float32Array>;
  readonly report: WeightReport;
}

export interface SwinUnetrImportOptions {
  /** Seed of the fresh values (drawn as the trainer draws its own initial values). */
  readonly seed: number;
  /** Anything fresh, skipped or unexpected is a StateDictMismatchError. Default false. */
  readonly strict?: boolean;
  /** The source already read by readWeightSource (saves a second read). */
  readonly read?: WeightSource;
}

/**
 * Matches a weight source against `SwinUNETR(options)` as upstream's fine-tuning scripts load pretrained weights
 * (keys normalised: `module.`, `backbone.`, `swin_vit`; state dict under state_dict/net/network_weights/student/model
 * or bare), keeping every tensor that fits in name and shape. Unlike upstream nothing is silent: the report names
 * what was loaded, what starts fresh and why. A file of another feature size, or with no model key at all, is
 * refused; so is a relative_position_index that is not this model's.
 */
export function importSwinUnetrWeights(source: string, options: SwinUnetrOptions, importOptions: SwinUnetrImportOptions): SwinUnetrWeights {
  const read = importOptions.read ?? readWeightSource(source);
  const { file } = read;
  const model = segmenterFor(options);
  const entries = stateDictEntries(model);
  const names = new Set(entries.map((e) => e.name));
  // An ONNX model's other initialisers are graph constants, not state-dict entries.
  const tensors = read.kind === 'onnx' ? new Map([...read.tensors].filter(([, t]) => names.has(normaliseKey(t.name)))) : read.tensors;
  const match = matchStateDict(tensors, new Map(entries.map((e) => [e.name, e.shape])), { file });
  const patch = match.mismatched.find((m) => m.name === PATCH_EMBED);
  if (patch && patch.checkpointShape[0] !== patch.modelShape[0]) {
    throw new SwinUnetrWeightError(`${file}: holds feature size ${patch.checkpointShape[0]} weights, the model has feature size ${patch.modelShape[0]}`);
  }
  if (match.tensors.size === 0) {
    const seen = [...read.tensors.keys()].slice(0, 3).join(', ');
    throw new SwinUnetrWeightError(`${file}: none of its ${read.tensors.size} keys (${seen}${read.tensors.size > 3 ? ', ...' : ''}) is a key of the SwinUNETR state dict`);
  }
  const kinds = new Map(entries.map((e) => [e.name, e]));
  const loaded = new Map<string, Float32Array>();
  let buffersChecked = 0;
  for (const [name, t] of match.tensors) {
    const e = kinds.get(name) as StateDictEntry;
    if (e.kind === 'buffer') {
      checkRelativePositionIndex(file, e, t);
      buffersChecked++;
    } else {
      if (!(t.data instanceof Float32Array)) throw new WeightFileError(file, `${name} is ${t.dtype}, expected a floating tensor`);
      loaded.set(name, t.data);
    }
  }
  const isParameter = (name: string) => kinds.get(name)?.kind !== 'buffer';
  const skipped = match.mismatched.map((m) => ({ ...m, reason: mismatchReason(m) }));
  const fresh = match.missing.filter(isParameter);
  const seed = importOptions.seed;
  const values = freshVocoValues(model, seed);
  for (const [name, v] of loaded) values.set(name, v);
  const pytorch = describeMismatch({ missing: fresh, unexpected: match.unexpected, mismatched: match.mismatched });
  if (importOptions.strict && pytorch) throw new StateDictMismatchError(`${file}: ${pytorch}`);
  const partial = { source, file, kind: read.kind, fileTensors: tensors.size, loaded: [...loaded.keys()], fresh, skipped, unexpected: match.unexpected, buffersChecked, seed, pytorch };
  return { values, report: { ...partial, summary: summarise(partial) } };
}

function segmenterFor(options: Pick<SwinUnetrOptions, 'featureSize' | 'inChannels' | 'outChannels'>): SegmenterGraph {
  // Parameters and buffers do not depend on the roi or the batch: the smallest graph names them all.
  return buildSegmenterGraph({ ...options, roi: 32, batchSize: 1 }, 1);
}

function mismatchReason(m: ShapeMismatch): string {
  const [file, model] = [m.checkpointShape, m.modelShape];
  if (IN_CHANNEL_KEYS.has(m.name) && file[0] === model[0]) return `input channels ${file[1]} in the file, ${model[1]} in the model`;
  if (m.name.startsWith('out.conv.conv.')) return `classes ${file[0]} in the file, ${model[0]} in the model`;
  return 'shape differs';
}

/** Model names grouped by their top-level module, runs of numbered ones joined: "decoder5..1, out". */
export function describeModules(names: readonly string[]): string {
  const modules = [...new Set(names.map((n) => n.split('.')[0]))];
  const parts: string[] = [];
  for (let i = 0; i < modules.length; ) {
    const m = /^(\D+)(\d+)$/.exec(modules[i]);
    let j = i + 1;
    if (m) {
      const step = (k: number) => /^(\D+)(\d+)$/.exec(modules[k] ?? '');
      const dir = step(j) && step(j)![1] === m[1] ? Number(step(j)![2]) - Number(m[2]) : 0;
      if (Math.abs(dir) === 1) while (step(j) && step(j)![1] === m[1] && Number(step(j)![2]) - Number(step(j - 1)![2]) === dir) j++;
    }
    parts.push(j - i > 1 ? `${modules[i]}..${/\d+$/.exec(modules[j - 1])![0]}` : modules[i]);
    i = j;
  }
  return parts.join(', ');
}

const VOCO_HEADS = /^(student|teacher)\./;

function summarise(r: Omit<WeightReport, 'summary'>): string {
  const total = r.loaded.length + r.fresh.length + r.skipped.length;
  const parts = [`${r.file}: loaded ${r.loaded.length} of ${total} parameters`];
  if (r.fresh.length) parts.push(`${describeModules(r.fresh)}: ${r.fresh.length} tensors fresh (not in the file; seed ${r.seed})`);
  for (const s of r.skipped) {
    parts.push(`${s.name} [${s.checkpointShape.join(',')}] in the file vs [${s.modelShape.join(',')}] in the model (${s.reason}) -> fresh`);
  }
  if (r.unexpected.length) {
    const why = r.unexpected.every((k) => VOCO_HEADS.test(k))
      ? 'VoCo heads not used'
      : `not in SwinUNETR: ${r.unexpected.slice(0, 3).join(', ')}${r.unexpected.length > 3 ? ', ...' : ''}`;
    parts.push(`${r.unexpected.length} file keys ignored (${why})`);
  }
  parts.push(r.buffersChecked ? `${r.buffersChecked} relative_position_index buffer${r.buffersChecked === 1 ? '' : 's'} checked` : 'relative_position_index not in the file (computed)');
  return parts.join('; ');
}

/** MONAI's state dict in PyTorch's order (the 8 relative_position_index buffers as int64) from values by name. */
export function swinUnetrStateDict(options: Pick<SwinUnetrOptions, 'featureSize' | 'inChannels' | 'outChannels'>, values: ReadonlyMap<string, Float32Array>): NamedTensor[] {
  return exportVocoStateDict(segmenterFor(options), values);
}

/** What a checkpoint written by writeSwinUnetrWeights says of its model. */
export interface SwinUnetrWeightsMeta {
  readonly model: 'swinunetr';
  readonly options: Pick<SwinUnetrOptions, 'featureSize' | 'inChannels' | 'outChannels'>;
}

export const SWINUNETR_MODEL = 'swinunetr';

/**
 * Writes every parameter to `out`, by its extension: `.ckpt` a checkpoint whose `parameters` group holds them
 * under MONAI's names (what fine-tuning reads; meta names the model and its options, plus `meta`);
 * `.safetensors` MONAI's state dict; `.pt`/`.pth` MONAI's state dict as upstream's trainers save it,
 * `{"state_dict": ...}`, which `SwinUNETR(use_v2=True).load_state_dict(strict=True)` accepts.
 */
export function writeSwinUnetrWeights(
  out: string,
  options: Pick<SwinUnetrOptions, 'featureSize' | 'inChannels' | 'outChannels'>,
  values: ReadonlyMap<string, Float32Array>,
  meta: object = {},
): void {
  const ext = weightOutputExtension(out);
  const { featureSize, inChannels, outChannels } = options;
  if (ext === '.ckpt') {
    const parameters: TensorMap = new Map(
      segmenterFor(options).graph.parameters.map((p) => {
        const v = values.get(p.tensor.name);
        if (!v) throw new Error(`no value for ${p.tensor.name}`);
        return [p.tensor.name, namedTensor(p.tensor.name, 'float32', p.tensor.shape, v)];
      }),
    );
    const document: SwinUnetrWeightsMeta & object = { model: SWINUNETR_MODEL, options: { featureSize, inChannels, outChannels }, ...meta };
    writeCheckpointFile(out, { step: 0, groups: new Map([[PARAMETERS_GROUP, parameters]]), meta: document });
  } else if (ext === '.safetensors') {
    writeSafetensors(out, swinUnetrStateDict(options, values));
  } else {
    writeTorchCheckpoint(out, swinUnetrStateDict(options, values));
  }
}

export interface SwinUnetrConvertOptions {
  /** The model's input channels and classes; the file's by default (classes: a SwinUNETR file's `out` layer). */
  readonly inChannels?: number;
  readonly outChannels?: number;
  readonly seed?: number;
  readonly strict?: boolean;
  readonly read?: WeightSource;
}

/**
 * Imports `source` into SwinUNETR (options inferred from the file unless given) and writes every parameter to `out`
 * (see writeSwinUnetrWeights), what the file lacks or does not fit drawn fresh from `seed`.
 */
export function convertSwinUnetrWeights(source: string, out: string, options: SwinUnetrConvertOptions = {}): SwinUnetrWeights & { options: SwinUnetrOptions } {
  weightOutputExtension(out);
  const read = options.read ?? readWeightSource(source);
  const inferred = inferSwinUnetrOptions(read.tensors, read.file);
  const outChannels = options.outChannels ?? inferred.outChannels;
  if (outChannels === undefined) throw new SwinUnetrWeightError(`${read.file}: has no output layer (out.conv.conv.weight); give --out-channels`);
  const o = resolveSwinUnetrOptions({ featureSize: inferred.featureSize, inChannels: options.inChannels ?? inferred.inChannels, outChannels });
  const seed = options.seed ?? 0;
  const imported = importSwinUnetrWeights(source, o, { seed, strict: options.strict, read });
  const { report } = imported;
  writeSwinUnetrWeights(out, o, imported.values, {
    importedFrom: path.resolve(report.file),
    ...(report.fresh.length || report.skipped.length ? { freshlyInitialised: [...report.fresh, ...report.skipped.map((s) => s.name)], seed } : {}),
  });
  return { ...imported, options: o };
}
