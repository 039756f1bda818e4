import * as path from 'path';
import { UserError } from '../../common/user-error';
import { loadCheckpoint } from '../../runtime/train/checkpoint';
import { WeightFileError } from '../../runtime/weights/errors';
import { readSafetensors } from '../../runtime/weights/safetensors';
import { matchStateDict, normaliseKey, normaliseStateDict } from '../../runtime/weights/state-dict';
import { NamedTensor, TensorMap, namedTensor } from '../../runtime/weights/tensor-map';
import { readTorchCheckpoint } from '../../runtime/weights/torch-reader';
import { StateDictEntry, VocoGraph, stateDictEntries } from './voco';
import { relativePositionIndex } from './swin-windows';

/** A weight file whose fixed buffers (the relative-position index) differ from what this model computes. */
export class BufferMismatchError extends UserError {}

/** The checkpoint group holding parameters and state (see runtime/train/checkpoint.ts). */
export const CHECKPOINT_PARAMETER_GROUP = 'parameters';

/** The tensors of a safetensors file, a training checkpoint (`.ckpt`) or a PyTorch `.pt`/`.pth` file. */
export function readWeightFile(file: string): TensorMap {
  const ext = path.extname(file).toLowerCase();
  if (isCheckpoint(file)) {
    const group = loadCheckpoint(file).groups.get(CHECKPOINT_PARAMETER_GROUP);
    if (!group) throw new WeightFileError(file, `checkpoint has no "${CHECKPOINT_PARAMETER_GROUP}" group`);
    return group;
  }
  if (ext === '.pt' || ext === '.pth' || ext === '.bin') return normaliseStateDict(readTorchCheckpoint(file), file);
  return readSafetensors(file);
}

/**
 * Matches the tensors of `file` against the model's state dict (every key, shape, the `relative_position_index`
 * buffers equal to the index this model computes) and returns the parameter and state values by graph name.
 * `tensors` are the file's contents when the caller has read them already.
 */
export function importVocoWeights(
  file: string,
  vg: Pick<VocoGraph, 'graph' | 'buffers'>,
  tensors: TensorMap = readWeightFile(file),
): Map<string, Float32Array> {
  const entries = stateDictEntries(vg);
  const source = isCheckpoint(file) ? withBuffers(tensors, entries) : tensors;
  const match = matchStateDict(source, new Map(entries.map((e) => [e.name, e.shape])), { strict: true, file });
  const values = new Map<string, Float32Array>();
  for (const e of entries) {
    const t = match.tensors.get(e.name)!;
    if (e.kind === 'buffer') {
      const expected = relativePositionIndex(Math.round(Math.cbrt(e.shape[0])));
      const got = t.data;
      const same = got instanceof BigInt64Array && got.length === expected.length && got.every((v, i) => v === expected[i]);
      if (!same) throw new BufferMismatchError(`${file}: ${e.name} is not the relative-position index of a ${Math.round(Math.cbrt(e.shape[0]))}^3 window`);
    } else {
      if (!(t.data instanceof Float32Array)) throw new WeightFileError(file, `${e.name} is ${t.dtype}, expected a floating tensor`);
      values.set(e.name, t.data);
    }
  }
  return values;
}

const isCheckpoint = (file: string): boolean => path.extname(file).toLowerCase() === '.ckpt';

/** Our training checkpoints hold parameters and state only; the fixed buffers are this model's own. */
function withBuffers(tensors: TensorMap, entries: readonly StateDictEntry[]): TensorMap {
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
