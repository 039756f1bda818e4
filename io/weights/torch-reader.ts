/**
 * Reads PyTorch checkpoints (`torch.save` output) without Python: the zip serialization of PyTorch 1.6+ and the
 * older sequential one. The pickle is run by our data-only unpickler with an allow-list of tensor-rebuilding and
 * container globals (and numpy's scalar and array globals, decoded as data: see numpy-values.ts); any other global
 * is refused before anything is built. Tensors come back contiguous.
 */
import { RefusedGlobalError, WeightFileError } from './errors';
import { RandomAccessFile, withFile } from './file-access';
import { numpyGlobals } from './numpy-values';
import { PyCallable, TruncatedPickleError, UnpickleHooks, unpickle } from './pickle-machine';
import { Tensor, TensorData, WeightDType, allocate, bytesPerElement, numel, viewAs } from './tensor-map';
import { ZipReader, looksLikeZip } from './zip-archive';

/** A tensor found in a checkpoint's object tree. */
export class TorchTensor implements Tensor {
  constructor(readonly dtype: WeightDType, readonly shape: readonly number[], readonly data: TensorData) {}
}

/** PyTorch's legacy storage classes, as pickled in both formats, and the dtype each holds. */
export const STORAGE_DTYPES: Readonly<Record<string, WeightDType>> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

class StorageType {
  constructor(readonly dtype: WeightDType) {}
}

class StorageRef {
  constructor(readonly key: string, readonly dtype: WeightDType, readonly numel: number) {}
}

/** A tensor as the pickle describes it; its storage bytes may only come after the pickle (legacy format). */
class TensorView {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

function callable(qualifiedName: string, call: (args: unknown[]) => unknown): PyCallable {
  return { qualifiedName, call };
}

function isCountList(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0);
}

/** The allow-list: the globals `torch.save` emits for tensors and state dicts. */
function makeHooks(file: string, storages: Map<string, StorageRef>, legacy: boolean): UnpickleHooks {
  const bad = (problem: string): never => {
    throw new WeightFileError(file, problem);
  };
  const rebuildTensor = (name: string) =>
    callable(name, ([storage, offset, shape, stride]) => {
      if (!(storage instanceof StorageRef)) bad(`${name}: first argument is not a storage`);
      if (!isCountList([offset]) || !isCountList(shape) || !isCountList(stride) || shape.length !== stride.length) {
        bad(`${name}: bad offset, size or stride`);
      }
      return new TensorView(storage as StorageRef, offset as number, shape as number[], stride as number[]);
    });
  const rebuildParameter = (name: string) =>
    callable(name, ([data]) => (data instanceof TensorView ? data : bad(`${name}: data is not a tensor`)));
  const allowed = new Map<string, unknown>([
    ['collections.OrderedDict', callable('collections.OrderedDict', (args) => orderedDict(file, args))],
    // Protocol 2 has no bytes opcode: Python 3 pickles bytes as _codecs.encode(latin-1 text, "latin1").
    ['_codecs.encode', callable('_codecs.encode', ([text, encoding]) => latin1Bytes(file, text, encoding))],
    ['builtins.set', callable('builtins.set', ([items]) => makeSet(file, items))],
    ['builtins.frozenset', callable('builtins.frozenset', ([items]) => makeSet(file, items))],
    ['torch.Size', callable('torch.Size', ([dims]) => (isCountList(dims) ? [...dims] : bad('torch.Size of something else than sizes')))],
    ['torch._utils._rebuild_tensor', rebuildTensor('torch._utils._rebuild_tensor')],
    ['torch._utils._rebuild_tensor_v2', rebuildTensor('torch._utils._rebuild_tensor_v2')],
    ['torch._utils._rebuild_parameter', rebuildParameter('torch._utils._rebuild_parameter')],
    ['torch._utils._rebuild_parameter_with_state', rebuildParameter('torch._utils._rebuild_parameter_with_state')],
    ...numpyGlobals(file),
    ...Object.entries(STORAGE_DTYPES).map(([name, dtype]) => [`torch.${name}`, new StorageType(dtype)] as [string, unknown]),
  ]);
  return {
    resolveGlobal(module, name) {
      // Protocol-2 pickles name builtins by their Python 2 module, as Python's fix_imports undoes.
      const value = allowed.get(`${module === '__builtin__' ? 'builtins' : module}.${name}`);
      if (value === undefined) throw new RefusedGlobalError(file, `${module}.${name}`);
      return value;
    },
    persistentLoad(pid) {
      if (!Array.isArray(pid) || pid[0] !== 'storage') return bad('unsupported persistent id (not a storage reference)');
      const [, type, key, , count, view] = pid as unknown[];
      if (!(type instanceof StorageType) || typeof key !== 'string' || !isCountList([count])) bad('bad storage reference');
      if (legacy && view != null) bad('storage views of the pre-1.0 format are not supported');
      const existing = storages.get(key as string);
      if (existing) return existing;
      const ref = new StorageRef(key as string, (type as StorageType).dtype, count as number);
      storages.set(ref.key, ref);
      return ref;
    },
  };
}

function latin1Bytes(file: string, text: unknown, encoding: unknown): Uint8Array {
  if (typeof text !== 'string' || !['latin1', 'latin-1'].includes(String(encoding)) || /[^\u0000-\u00ff]/.test(text)) {
    throw new WeightFileError(file, '_codecs.encode is only supported for latin-1 bytes');
  }
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

function makeSet(file: string, items: unknown): Set<unknown> {
  if (items !== undefined && !Array.isArray(items)) throw new WeightFileError(file, 'a set of something else than a list');
  return new Set(items);
}

function orderedDict(file: string, args: unknown[]): Map<unknown, unknown> {
  const map = new Map<unknown, unknown>();
  const pairs = args[0] ?? [];
  if (!Array.isArray(pairs)) throw new WeightFileError(file, 'OrderedDict argument is not a list of pairs');
  for (const pair of pairs) {
    if (!Array.isArray(pair) || pair.length !== 2) throw new WeightFileError(file, 'OrderedDict argument is not a list of pairs');
    map.set(pair[0], pair[1]);
  }
  return map;
}

/** The view's elements in row-major order, copied out of the storage unless the view is the whole storage. */
function materialise(file: string, view: TensorView, storage: TensorData): TorchTensor {
  const { shape, stride, offset } = view;
  const count = numel(shape);
  const dtype = view.storage.dtype;
  if (count === 0) return new TorchTensor(dtype, shape, allocate(dtype, 0));
  const last = shape.reduce((sum, d, i) => sum + (d - 1) * stride[i], offset);
  if (last >= storage.length) {
    throw new WeightFileError(file, `a tensor of shape [${shape}] at offset ${offset} lies outside its ${storage.length}-element storage`);
  }
  let contiguous = true;
  for (let i = shape.length - 1, expected = 1; i >= 0; expected *= shape[i], i--) if (shape[i] !== 1 && stride[i] !== expected) contiguous = false;
  if (contiguous) {
    const data = offset === 0 && count === storage.length ? storage : storage.slice(offset, offset + count);
    return new TorchTensor(dtype, shape, data);
  }
  const out = allocate(dtype, count) as unknown as { [i: number]: unknown };
  const src = storage as unknown as { [i: number]: unknown };
  const index = new Array<number>(shape.length).fill(0);
  let at = offset;
  for (let i = 0; i < count; i++) {
    out[i] = src[at];
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) {
        at += stride[d];
        break;
      }
      at -= (shape[d] - 1) * stride[d];
      index[d] = 0;
    }
  }
  return new TorchTensor(dtype, shape, out as unknown as TensorData);
}

/** Replaces every TensorView in the object tree by its tensor, reading each storage once. Iterative: pickles may nest deeply or refer to themselves. */
function resolveTensors(file: string, root: unknown, readStorage: (ref: StorageRef) => TensorData): unknown {
  const cache = new Map<string, TensorData>();
  const resolve = (v: unknown): unknown => {
    if (!(v instanceof TensorView)) return v;
    let data = cache.get(v.storage.key);
    if (!data) cache.set(v.storage.key, (data = readStorage(v.storage)));
    return materialise(file, v, data);
  };
  const seen = new Set<object>();
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const v = pending.pop();
    if (!(Array.isArray(v) || v instanceof Map) || seen.has(v)) continue;
    seen.add(v);
    if (Array.isArray(v)) v.forEach((x, i) => (v[i] = resolve(x)));
    else for (const [k, x] of v) v.set(k, resolve(x));
    for (const x of v.values()) if (Array.isArray(x) || x instanceof Map) pending.push(x);
  }
  return resolve(root);
}

function storageData(file: string, ref: StorageRef, bytes: Uint8Array): TensorData {
  const size = bytesPerElement(ref.dtype);
  if (bytes.length !== ref.numel * size) {
    throw new WeightFileError(file, `storage "${ref.key}" holds ${bytes.length} bytes, ${ref.numel} ${ref.dtype} elements need ${ref.numel * size}`);
  }
  return viewAs(ref.dtype, bytes.buffer, bytes.byteOffset, ref.numel);
}

function readZipCheckpoint(f: RandomAccessFile): unknown {
  const zip = new ZipReader(f);
  const pickleName = [...zip.entries.keys()].find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pickleName) throw new WeightFileError(f.file, 'zip archive without data.pkl: not a PyTorch checkpoint');
  const prefix = pickleName.slice(0, -'data.pkl'.length);
  if (zip.entries.has(`${prefix}byteorder`)) {
    const order = Buffer.from(zip.read(`${prefix}byteorder`)).toString('utf8').trim();
    if (order !== 'little') throw new WeightFileError(f.file, `byte order "${order}" is not supported`);
  }
  const storages = new Map<string, StorageRef>();
  const { value } = unpickle(f.file, zip.read(pickleName), 0, makeHooks(f.file, storages, false));
  return resolveTensors(f.file, value, (ref) => storageData(f.file, ref, zip.read(`${prefix}data/${ref.key}`)));
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

function readLegacyCheckpoint(f: RandomAccessFile): unknown {
  const storages = new Map<string, StorageRef>();
  const hooks = makeHooks(f.file, storages, true);
  // The pickles lie at the head of the file, the storages after them: read a growing prefix until they fit.
  for (let window = Math.min(f.size, 1 << 20); ; window = Math.min(f.size, window * 4)) {
    const head = f.read(0, window);
    if (!head) throw new WeightFileError(f.file, 'could not be read');
    try {
      const magic = unpickle(f.file, head, 0, hooks);
      if (magic.value !== LEGACY_MAGIC) throw new WeightFileError(f.file, 'not a PyTorch checkpoint (neither a zip archive nor the legacy format)');
      const protocol = unpickle(f.file, head, magic.end, hooks);
      if (protocol.value !== LEGACY_PROTOCOL) throw new WeightFileError(f.file, `unsupported legacy protocol ${String(protocol.value)}`);
      const sysInfo = unpickle(f.file, head, protocol.end, hooks);
      if (!(sysInfo.value instanceof Map) || sysInfo.value.get('little_endian') !== true) {
        throw new WeightFileError(f.file, 'written on a big-endian machine, which is not supported');
      }
      const root = unpickle(f.file, head, sysInfo.end, hooks);
      const keys = unpickle(f.file, head, root.end, hooks);
      if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) {
        throw new WeightFileError(f.file, 'bad storage key list');
      }
      const locations = locateLegacyStorages(f, keys.value as string[], storages, keys.end);
      return resolveTensors(f.file, root.value, (ref) => {
        const at = locations.get(ref.key);
        const bytes = at === undefined ? undefined : f.read(at, ref.numel * bytesPerElement(ref.dtype));
        if (!bytes) throw new WeightFileError(f.file, `storage "${ref.key}" is missing or truncated`);
        return storageData(f.file, ref, bytes);
      });
    } catch (error) {
      if (!(error instanceof TruncatedPickleError) || window === f.size) throw error;
    }
  }
}

/** Where each storage's bytes start: the storages follow the pickles in key order, each after its element count. */
function locateLegacyStorages(f: RandomAccessFile, keys: string[], storages: Map<string, StorageRef>, start: number): Map<string, number> {
  const locations = new Map<string, number>();
  let at = start;
  for (const key of keys) {
    const ref = storages.get(key);
    const countBytes = f.read(at, 8);
    if (!ref || !countBytes) throw new WeightFileError(f.file, `storage "${key}" is missing or truncated`);
    const count = Number(new DataView(countBytes.buffer).getBigInt64(0, true));
    if (count !== ref.numel) throw new WeightFileError(f.file, `storage "${key}" holds ${count} elements, the pickle says ${ref.numel}`);
    locations.set(key, at + 8);
    at += 8 + count * bytesPerElement(ref.dtype);
  }
  return locations;
}

/**
 * The object a `torch.save` file holds (dicts as Map, tensors as TorchTensor), either serialization format.
 * Refuses any pickled global outside the allow-list with a RefusedGlobalError; malformed files give a
 * WeightFileError naming the file.
 */
export function readTorchCheckpoint(file: string): unknown {
  return withFile(file, (f) => (looksLikeZip(f) ? readZipCheckpoint(f) : readLegacyCheckpoint(f)));
}
