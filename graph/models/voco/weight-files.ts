/**
 * VoCo weights in and out as whole files: a weight file of any supported format imported for a model of its
 * feature size, and the exports users take elsewhere (a self-contained encoder ONNX model, upstream-named
 * safetensors, a `.pt` in upstream form).
 */
import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../../../common/user-error';
import { PARAMETERS_GROUP, writeCheckpointFile } from '../../../io/checkpoint';
import { writeSafetensors } from '../../../io/weights/safetensors';
import { TensorMap, namedTensor } from '../../../io/weights/tensor-map';
import { writeTorchCheckpoint } from '../../../io/weights/torch-writer';
import { ModelEntry } from '../../onnx/manifest';
import { EXPORT_FORMATS, ExportFormat, writeStateDictExports } from '../weight-exports';
import { writeForwardModel } from '../../onnx/artifacts';
import { ExternalDataOptions } from '../../onnx/external-data';
import { PRESET_FEATURE_SIZE, VocoPreset, resolveVocoOptions } from './options';
import { VocoGraph, buildEncoderGraph, buildVocoGraph } from './model';
import {
  VocoWeightsMatch,
  completeVocoValues,
  exportVocoStateDict,
  featureSizeOf,
  matchVocoWeights,
  readWeightFile,
} from './weights';

/** A weights request that cannot be met as asked: a preset the file does not fit, an output format we do not write. */
export class WeightOptionError extends UserError {}

/** The preset of a feature size, or `feature size N` when it is none of them. */
export function describeFeatureSize(featureSize: number): string {
  const preset = Object.entries(PRESET_FEATURE_SIZE).find(([, fs]) => fs === featureSize);
  return preset ? `feature size ${featureSize} (preset ${preset[0]})` : `feature size ${featureSize}`;
}

/** The model graph (training form, roi 64) whose state dict a file of `featureSize` is matched against. */
export function vocoGraphFor(featureSize: number): VocoGraph {
  return buildVocoGraph(resolveVocoOptions({ featureSize, featureDropout: 0 }), 'train');
}

export interface VocoImportOptions {
  /** The model the file must fit; inferred from the file when neither is given. */
  readonly preset?: VocoPreset;
  readonly featureSize?: number;
  /** Missing or unexpected keys are an error. */
  readonly strict?: boolean;
}

export interface VocoImport extends VocoWeightsMatch {
  readonly file: string;
  readonly featureSize: number;
  /** How many tensors the file holds. */
  readonly fileTensors: number;
  readonly graph: VocoGraph;
}

/** Reads `file`, checks its feature size against the one asked for, and matches it against that model. */
export function importVocoWeightFile(file: string, options: VocoImportOptions = {}): VocoImport {
  const tensors = readWeightFile(file);
  const featureSize = featureSizeOf(file, tensors);
  const asked = options.featureSize ?? (options.preset ? resolveVocoOptions({ preset: options.preset }).featureSize : undefined);
  if (asked !== undefined && asked !== featureSize) {
    throw new WeightOptionError(`${file}: holds ${describeFeatureSize(featureSize)} weights, but ${describeFeatureSize(asked)} was asked for`);
  }
  const graph = vocoGraphFor(featureSize);
  const match = matchVocoWeights(file, graph, tensors, { strict: options.strict ?? false });
  return { ...match, file, featureSize, fileTensors: tensors.size, graph };
}

export const WEIGHT_OUTPUT_EXTENSIONS = ['.ckpt', '.safetensors', '.pt', '.pth'] as const;

/**
 * Writes every parameter and state value to `out`, by its extension: `.ckpt` a checkpoint whose `parameters`
 * group holds them under graph names (what `voco train --init-from` and `voco grad --weights` read);
 * `.safetensors` the upstream state dict; `.pt`/`.pth` the upstream state dict as upstream saves it,
 * `{"state_dict": ...}`. `meta` goes into a checkpoint's document.
 */
export function writeVocoWeights(out: string, vg: Pick<VocoGraph, 'graph' | 'buffers'>, values: ReadonlyMap<string, Float32Array>, meta: object = {}): void {
  const ext = weightOutputExtension(out);
  if (ext === '.ckpt') {
    const parameters: TensorMap = new Map(
      vg.graph.parameters.map((p) => [p.tensor.name, namedTensor(p.tensor.name, 'float32', p.tensor.shape, valueOf(values, p.tensor.name))]),
    );
    writeCheckpointFile(out, { step: 0, groups: new Map([[PARAMETERS_GROUP, parameters]]), meta });
  } else if (ext === '.safetensors') {
    writeSafetensors(out, exportVocoStateDict(vg, values));
  } else {
    writeTorchCheckpoint(out, exportVocoStateDict(vg, values));
  }
}

/** `out`'s extension when it is one writeVocoWeights writes; a WeightOptionError otherwise. */
export function weightOutputExtension(out: string): (typeof WEIGHT_OUTPUT_EXTENSIONS)[number] {
  const ext = path.extname(out).toLowerCase();
  const known = WEIGHT_OUTPUT_EXTENSIONS.find((e) => e === ext);
  if (!known) throw new WeightOptionError(`${out}: cannot tell the format to write; end the name in ${WEIGHT_OUTPUT_EXTENSIONS.join(', ')}`);
  return known;
}

function valueOf(values: ReadonlyMap<string, Float32Array>, name: string): Float32Array {
  const v = values.get(name);
  if (!v) throw new Error(`no value for ${name}`);
  return v;
}

/** Imports `file` and writes it to `out` with what it lacks freshly initialised from `seed` (see writeVocoWeights). */
export function convertVocoWeights(file: string, out: string, options: VocoImportOptions & { readonly seed?: number } = {}): VocoImport {
  weightOutputExtension(out);
  const imported = importVocoWeightFile(file, options);
  const seed = options.seed ?? 0;
  const values = completeVocoValues(imported.graph, imported, seed);
  writeVocoWeights(out, imported.graph, values, {
    importedFrom: path.resolve(file),
    featureSize: imported.featureSize,
    ...(imported.fresh.length ? { freshlyInitialised: imported.fresh, seed } : {}),
  });
  return imported;
}

export { EXPORT_FORMATS, type ExportFormat };

export const ENCODER_FILE = 'encoder.onnx';
const STATE_DICT_BASE = 'voco_weights';
export const SAFETENSORS_EXPORT_FILE = `${STATE_DICT_BASE}.safetensors`;
export const PT_EXPORT_FILE = `${STATE_DICT_BASE}.pt`;

export interface VocoExportOptions {
  readonly formats?: readonly ExportFormat[];
  /** Side of the encoder's input crops (a multiple of 32). Default 64. */
  readonly roi?: number;
  /** Crops per encoder run. Default 1. */
  readonly encoderBatch?: number;
  readonly externalData?: ExternalDataOptions;
}

/** The self-contained encoder `file` computes from crops [batch, 1, roi, roi, roi]: `hidden0..4` and `embedding`. */
export function writeVocoEncoder(
  file: string,
  featureSize: number,
  values: ReadonlyMap<string, Float32Array>,
  options: Pick<VocoExportOptions, 'roi' | 'encoderBatch' | 'externalData'> = {},
): ModelEntry {
  const o = encoderOptions(featureSize, options);
  const encoder = buildEncoderGraph(o, o.batchSize);
  return writeForwardModel(file, { outputs: encoder.outputs, inputs: [encoder.crops], weights: values, externalData: options.externalData });
}

const encoderOptions = (featureSize: number, options: Pick<VocoExportOptions, 'roi' | 'encoderBatch'>) =>
  resolveVocoOptions({ featureSize, roi: options.roi ?? 64, batchSize: options.encoderBatch ?? 1 });

/**
 * Exports the weights of `source` (a checkpoint or any weight file) into `dir`: encoder.onnx, the upstream state
 * dict as safetensors and as a `.pt`. The encoder needs the backbone only; the state-dict files need every
 * parameter and state key (the relative-position buffers are this model's own).
 * Returns the paths written.
 */
export function exportVoco(source: string, dir: string, options: VocoExportOptions = {}): { imported: VocoImport; written: string[] } {
  const formats = options.formats ?? EXPORT_FORMATS;
  const imported = importVocoWeightFile(source, { strict: false });
  const lacking = (names: readonly string[]) => imported.fresh.filter((n) => names.includes(n));
  if (formats.includes('onnx')) {
    const o = encoderOptions(imported.featureSize, options);
    const encoderNames = buildEncoderGraph(o, o.batchSize).graph.parameters.map((p) => p.tensor.name);
    refuseLacking(source, lacking(encoderNames), 'the encoder');
  }
  if (formats.includes('safetensors') || formats.includes('pt')) {
    refuseLacking(source, imported.fresh, 'the full state dict (`voco import-weights` fills what is missing freshly, or export --formats onnx)');
  }
  fs.mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  if (formats.includes('onnx')) {
    const file = path.join(dir, ENCODER_FILE);
    const entry = writeVocoEncoder(file, imported.featureSize, imported.values, options);
    written.push(file, ...(entry.dataFile ? [path.join(dir, entry.dataFile)] : []));
  }
  written.push(...writeStateDictExports(dir, STATE_DICT_BASE, formats, () => exportVocoStateDict(imported.graph, imported.values)));
  return { imported, written };
}

export function refuseLacking(source: string, missing: readonly string[], what: string): void {
  if (!missing.length) return;
  const shown = missing.slice(0, 3).join(', ');
  throw new WeightOptionError(`${source}: lacks ${missing.length} key(s) of ${what}: ${shown}${missing.length > 3 ? ', ...' : ''}`);
}
