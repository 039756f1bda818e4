/**
 * From a loaded checkpoint object to the model's weights: unwrap the state dict and normalise its keys as the
 * upstream downstream scripts do, then match it against the model's expected names and shapes and report what
 * PyTorch's `load_state_dict` reports.
 */
import { StateDictMismatchError, WeightFileError } from './errors';
import { Tensor, TensorMap, isFloating, isTensor, namedTensor, toFloat32 } from './tensor-map';

/** Where checkpoints keep their state dict, tried in this order; otherwise the object is the state dict itself. */
export const STATE_DICT_WRAPPERS = ['state_dict', 'network_weights', 'net', 'student', 'model'] as const;

const DROPPED_PREFIXES = ['module.', 'backbone.'];

/**
 * The key as the upstream downstream scripts see it: the `module.` (DistributedDataParallel) and `backbone.`
 * (VoCoHead) prefixes dropped, `swin_vit` spelt `swinViT`.
 */
export function normaliseKey(key: string): string {
  let k = key;
  for (let changed = true; changed; ) {
    changed = false;
    for (const prefix of DROPPED_PREFIXES) {
      if (k.startsWith(prefix)) {
        k = k.slice(prefix.length);
        changed = true;
      }
    }
  }
  return k.replaceAll('swin_vit', 'swinViT');
}

/**
 * The tensors of a checkpoint object (from readTorchCheckpoint, or a TensorMap) under normalised keys, in the
 * file's order. `file` names the source in errors.
 */
export function normaliseStateDict(root: unknown, file: string): TensorMap {
  let dict = root;
  if (dict instanceof Map) {
    const wrapper = STATE_DICT_WRAPPERS.find((w) => dict instanceof Map && dict.has(w));
    if (wrapper) dict = (dict as Map<unknown, unknown>).get(wrapper);
  }
  if (!(dict instanceof Map)) throw new WeightFileError(file, 'holds no state dict (expected a dict of tensors)');
  const out: TensorMap = new Map();
  const originalKeys = new Map<string, string>();
  for (const [key, value] of dict as Map<unknown, unknown>) {
    if (typeof key !== 'string' || !isTensor(value)) {
      const keys = [...(dict as Map<unknown, unknown>).keys()].slice(0, 5).map(String).join(', ');
      throw new WeightFileError(
        file,
        `entry "${String(key)}" is not a tensor; a state dict maps names to tensors, under one of ${STATE_DICT_WRAPPERS.join(', ')} or at the top (keys seen: ${keys})`,
      );
    }
    const name = normaliseKey(key);
    if (out.has(name)) throw new WeightFileError(file, `keys "${originalKeys.get(name)}" and "${key}" both normalise to "${name}"`);
    originalKeys.set(name, key);
    out.set(name, namedTensor(name, value.dtype, value.shape, value.data));
  }
  return out;
}

export interface ShapeMismatch {
  readonly name: string;
  readonly checkpointShape: readonly number[];
  readonly modelShape: readonly number[];
}

export interface StateDictMatch {
  /** The matched tensors under the model's names, in the model's order; floating tensors widened to float32. */
  readonly tensors: TensorMap;
  /** Model names the checkpoint lacks. */
  readonly missing: string[];
  /** Checkpoint keys (normalised) the model does not have. */
  readonly unexpected: string[];
  /** Keys present on both sides with different shapes (left out of `tensors`). */
  readonly mismatched: ShapeMismatch[];
}

export interface MatchOptions {
  /** Throw a StateDictMismatchError when anything is missing, unexpected or mis-shaped. */
  readonly strict?: boolean;
  /** Names the source in the error. */
  readonly file?: string;
}

/**
 * Matches normalised checkpoint tensors against the model's `{name: shape}` (model names may carry the `backbone.`
 * prefix; both sides are compared under normaliseKey).
 */
export function matchStateDict(
  loaded: TensorMap,
  expected: ReadonlyMap<string, readonly number[]> | Readonly<Record<string, readonly number[]>>,
  options: MatchOptions = {},
): StateDictMatch {
  const modelShapes = expected instanceof Map ? expected : new Map(Object.entries(expected));
  const byKey = new Map<string, string>();
  for (const name of modelShapes.keys()) {
    const key = normaliseKey(name);
    if (byKey.has(key)) throw new Error(`model names "${byKey.get(key)}" and "${name}" both normalise to "${key}"`);
    byKey.set(key, name);
  }
  const loadedByKey = new Map([...loaded.values()].map((t) => [normaliseKey(t.name), t]));
  const tensors: TensorMap = new Map();
  const missing: string[] = [];
  const mismatched: ShapeMismatch[] = [];
  for (const [key, name] of byKey) {
    const t = loadedByKey.get(key);
    const modelShape = modelShapes.get(name) as readonly number[];
    if (!t) missing.push(name);
    else if (!sameShape(t.shape, modelShape)) mismatched.push({ name, checkpointShape: t.shape, modelShape });
    else tensors.set(name, namedTensor(name, ...widened(t)));
  }
  const unexpected = [...loadedByKey.keys()].filter((k) => !byKey.has(k));
  const match = { tensors, missing, unexpected, mismatched };
  if (options.strict && (missing.length || unexpected.length || mismatched.length)) {
    throw new StateDictMismatchError(`${options.file ? `${options.file}: ` : ''}${describeMismatch(match)}`);
  }
  return match;
}

function widened(t: Tensor): [Tensor['dtype'], readonly number[], Tensor['data']] {
  const w = isFloating(t.dtype) ? toFloat32(t) : t;
  return [w.dtype, w.shape, w.data];
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** The report in PyTorch's words ("Missing key(s) in state_dict: ..."), one line; empty when all matched. */
export function describeMismatch(match: Pick<StateDictMatch, 'missing' | 'unexpected' | 'mismatched'>): string {
  const quoted = (names: string[]) => names.map((n) => `"${n}"`).join(', ');
  const parts: string[] = [];
  if (match.missing.length) parts.push(`Missing key(s) in state_dict: ${quoted(match.missing)}.`);
  if (match.unexpected.length) parts.push(`Unexpected key(s) in state_dict: ${quoted(match.unexpected)}.`);
  for (const m of match.mismatched) {
    parts.push(
      `size mismatch for ${m.name}: copying a param with shape [${m.checkpointShape.join(', ')}] from checkpoint, ` +
        `the shape in current model is [${m.modelShape.join(', ')}].`,
    );
  }
  return parts.length ? `Error(s) in loading state_dict: ${parts.join(' ')}` : '';
}
