import * as path from 'path';
import { Rng } from '../../../common/rng';
import { UserError } from '../../../common/user-error';
import { PARAMETERS_GROUP, loadCheckpoint } from '../../../io/checkpoint';
import { StateDictMismatchError, WeightFileError } from '../../../io/weights/errors';
import { readSafetensors } from '../../../io/weights/safetensors';
import { describeMismatch, matchStateDict, normaliseKey, normaliseStateDict } from '../../../io/weights/state-dict';
import { NamedTensor, TensorMap, namedTensor } from '../../../io/weights/tensor-map';
import { readTorchCheckpoint } from '../../../io/weights/torch-reader';
import { StateDictEntry, stateDictEntries } from '../swinunetr-encoder';
import { VocoGraph } from './model';
import { relativePositionIndex } from '../swin-windows';
import { materialize } from '../../nn/init';

/** A weight file whose fixed buffers (the relative-position index) differ from what this model computes. */
export class BufferMismatchError extends UserError {}

/** The tensors of a safetensors file, a training checkpoint (`.ckpt`) or a PyTorch `.pt`/`.pth` file. */
export function readWeightFile(file: string): TensorMap {
  const ext = path.extname(file).toLowerCase();
  if (isCheckpoint(file)) {
    const group = loadCheckpoint(file).groups.get(PARAMETERS_GROUP);
    if (!group) throw new WeightFileError(file, `checkpoint has no "${PARAMETERS_GROUP}" group`);
    return group;
  }
  if (ext === '.pt' || ext === '.pth' || ext === '.bin') return normaliseStateDict(readTorchCheckpoint(file), file);
  return readSafetensors(file);
}

/** The outcome of matching a weight file against the model, as PyTorch's `load_state_dict` reports it. */
export interface VocoWeightsMatch {
  /** Values by graph name of the parameters and state the file holds (floating tensors widened to float32). */
  readonly values: Map<string, Float32Array>;
  /** State-dict names (buffers included) the file lacks. */
  readonly missing: string[];
  /** Normalised file keys the model does not have. */
  readonly unexpected: string[];
  /** Parameters and state the file lacks: they keep whatever value the caller gives them (a fresh one). */
  readonly fresh: string[];
  /** The report in PyTorch's words, one line; empty when every key matched. */
  readonly report: string;
}

export interface VocoMatchOptions {
  /** Missing or unexpected keys are an error (a StateDictMismatchError). Mis-shaped keys always are. Default true. */
  readonly strict?: boolean;
}

/**
 * Matches the tensors of `file` against the model's state dict: every key and shape, and the
 * `relative_position_index` buffers it holds equal to the index this model computes. As in PyTorch, a mis-shaped
 * key is an error even when not strict; so is a file that matches no key at all. `tensors` are the file's contents
 * when the caller has read them already.
 */
export function matchVocoWeights(
  file: string,
  vg: Pick<VocoGraph, 'graph' | 'buffers'>,
  tensors: TensorMap = readWeightFile(file),
  options: VocoMatchOptions = {},
): VocoWeightsMatch {
  const entries = stateDictEntries(vg);
  const source = isCheckpoint(file) ? withBuffers(tensors, entries) : tensors;
  const match = matchStateDict(source, new Map(entries.map((e) => [e.name, e.shape])), { strict: options.strict ?? true, file });
  if (match.mismatched.length) throw new StateDictMismatchError(`${file}: ${describeMismatch({ missing: [], unexpected: [], mismatched: match.mismatched })}`);
  if (match.tensors.size === 0) {
    const seen = [...source.keys()].slice(0, 3).join(', ');
    throw new WeightFileError(file, `none of its ${source.size} keys (${seen}, ...) is a key of the VoCo state dict`);
  }
  const values = new Map<string, Float32Array>();
  const fresh: string[] = [];
  for (const e of entries) {
    const t = match.tensors.get(e.name);
    if (e.kind === 'buffer') {
      if (t) checkRelativePositionIndex(file, e, t);
    } else if (!t) {
      fresh.push(e.name);
    } else {
      if (!(t.data instanceof Float32Array)) throw new WeightFileError(file, `${e.name} is ${t.dtype}, expected a floating tensor`);
      values.set(e.name, t.data);
    }
  }
  return { values, missing: match.missing, unexpected: match.unexpected, fresh, report: describeMismatch(match) };
}

/** Refuses a `relative_position_index` buffer that is not the index of its block's window. */
export function checkRelativePositionIndex(file: string, e: StateDictEntry, t: NamedTensor): void {
  const window = Math.round(Math.cbrt(e.shape[0]));
  const expected = relativePositionIndex(window);
  const got = t.data;
  const same = got instanceof BigInt64Array && got.length === expected.length && got.every((v, i) => v === expected[i]);
  if (!same) throw new BufferMismatchError(`${file}: ${e.name} is not the relative-position index of a ${window}^3 window`);
}

/**
 * Every parameter and state value of the model, strictly from `file` (see matchVocoWeights). `tensors` are the
 * file's contents when the caller has read them already.
 */
export function importVocoWeights(
  file: string,
  vg: Pick<VocoGraph, 'graph' | 'buffers'>,
  tensors: TensorMap = readWeightFile(file),
): Map<string, Float32Array> {
  return matchVocoWeights(file, vg, tensors, { strict: true }).values;
}

/**
 * Weights to continue pre-training from: everything the file holds (backbone, and the heads when present), by
 * graph name; by default missing and unexpected keys are reported in `report` rather than refused, so a
 * backbone-only file (a `net` dict) leaves the heads at their fresh values. Mis-shaped keys are always an error.
 */
export function importVocoWeightsForTraining(
  file: string,
  vg: Pick<VocoGraph, 'graph' | 'buffers'>,
  options: VocoMatchOptions = {},
): VocoWeightsMatch {
  return matchVocoWeights(file, vg, readWeightFile(file), { strict: options.strict ?? false });
}

/**
 * The first value of every parameter and state tensor, drawn from the model's InitSpecs in graph order from a
 * generator seeded with `seed` (the order and draws of the trainer's own initialisation).
 */
export function freshVocoValues(vg: Pick<VocoGraph, 'graph'>, seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed);
  return new Map(vg.graph.parameters.map((p) => [p.tensor.name, materialize(p.init, p.tensor.shape, p.tensor.dtype, rng) as Float32Array]));
}

/** Every parameter and state value: the file's where it has them, fresh ones (seeded) where not. */
export function completeVocoValues(vg: Pick<VocoGraph, 'graph'>, match: Pick<VocoWeightsMatch, 'values'>, seed: number): Map<string, Float32Array> {
  const values = freshVocoValues(vg, seed);
  for (const [name, v] of match.values) values.set(name, v);
  return values;
}

const isCheckpoint = (file: string): boolean => path.extname(file).toLowerCase() === '.ckpt';

/** Our training checkpoints hold parameters and state only; the fixed buffers are this model's own. */
export function withBuffers(tensors: TensorMap, entries: readonly StateDictEntry[]): TensorMap {
  const out: TensorMap = new Map(tensors);
  for (const e of entries) {
    if (e.kind === 'buffer' && !out.has(e.name)) out.set(e.name, namedTensor(e.name, 'int64', e.shape, relativePositionIndex(Math.round(Math.cbrt(e.shape[0])))));
  }
  return out;
}

const PATCH_EMBED_KEY = 'swinViT.patch_embed.proj.weight';

/** The feature size of the VoCo weights in `tensors` (the patch embedding's output channels). */
export function featureSizeOf(file: string, tensors: TensorMap): number {
  const patch = [...tensors.values()].find((t) => normaliseKey(t.name) === PATCH_EMBED_KEY);
  if (!patch) throw new WeightFileError(file, `has no ${PATCH_EMBED_KEY} (not VoCo/SwinUNETR weights?)`);
  return patch.shape[0];
}

/** The upstream state dict (parameters, state and buffers in upstream order) from values by graph name. */
export function exportVocoStateDict(vg: Pick<VocoGraph, 'graph' | 'buffers'>, values: ReadonlyMap<string, Float32Array>): NamedTensor[] {
  return stateDictEntries(vg).map((e) => {
    if (e.kind === 'buffer') return namedTensor(e.name, 'int64', e.shape, relativePositionIndex(Math.round(Math.cbrt(e.shape[0]))));
    const v = values.get(e.name);
    if (!v) throw new Error(`no value for ${e.name}`);
    return namedTensor(e.name, 'float32', e.shape, v);
  });
}
