/**
 * numpy values in checkpoint metadata (MONAI/upstream trainers save `best_acc` as a numpy scalar), decoded as data:
 * stand-ins for `numpy.dtype`, `numpy.core.multiarray.scalar` and `numpy.core.multiarray._reconstruct` (with
 * `numpy.ndarray`) that read the dtype string and the raw bytes. Nothing of numpy is imported or run, and only the
 * plain numeric dtypes are accepted (no object arrays, which would pickle arbitrary objects).
 */
import { WeightFileError } from './errors';
import { PyCallable, PyStateful } from './pickle-machine';
import { Tensor, TensorData, WeightDType, allocate, bytesPerElement, numel, toFloat32 } from './tensor-map';

/** numpy's type codes (kind + item size) that map onto a weight dtype. */
const NUMPY_DTYPES: Readonly<Record<string, WeightDType>> = {
  f2: 'float16',
  f4: 'float32',
  f8: 'float64',
  i4: 'int32',
  i8: 'int64',
  u1: 'uint8',
  b1: 'bool',
};

/** A `numpy.dtype(code)` whose byte order BUILD sets. */
class NumpyDType implements PyStateful {
  byteOrder = '=';
  constructor(
    readonly file: string,
    readonly code: string,
    readonly dtype: WeightDType,
  ) {}

  setState(state: unknown): void {
    const order = Array.isArray(state) ? state[1] : undefined;
    if (typeof order !== 'string' || !['<', '>', '|', '='].includes(order)) throw new WeightFileError(this.file, `numpy dtype ${this.code}: bad state`);
    this.byteOrder = order;
  }

  get littleEndian(): boolean {
    return this.byteOrder !== '>';
  }
}

/** A numpy array as the weight layer sees tensors; BUILD gives it its shape, dtype and bytes. */
class NumpyArray implements Tensor, PyStateful {
  dtype: WeightDType = 'float64';
  shape: readonly number[] = [0];
  data: TensorData = allocate('float64', 0);

  constructor(readonly file: string) {}

  setState(state: unknown): void {
    const bad = (problem: string): never => {
      throw new WeightFileError(this.file, `numpy array: ${problem}`);
    };
    if (!Array.isArray(state) || state.length !== 5) return bad('bad state');
    const [, shape, dtype, fortran, raw] = state as unknown[];
    if (!(dtype instanceof NumpyDType)) return bad('no dtype');
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) return bad('bad shape');
    if (fortran === true && (shape as number[]).filter((d) => d > 1).length > 1) return bad('Fortran order is not supported');
    if (!dtype.littleEndian) return bad('big-endian data is not supported');
    if (!(raw instanceof Uint8Array)) return bad('no raw bytes (object arrays are not supported)');
    const count = numel(shape as number[]);
    if (raw.length !== count * bytesPerElement(dtype.dtype)) return bad(`${raw.length} bytes for ${count} ${dtype.dtype} elements`);
    const data = allocate(dtype.dtype, count);
    new Uint8Array(data.buffer).set(raw);
    this.dtype = dtype.dtype;
    this.shape = [...(shape as number[])];
    this.data = data;
  }
}

const NDARRAY = Symbol('numpy.ndarray');

/** The numpy scalar `dtype` holds in `raw`: a number (bigint beyond 2^53 for int64), or a boolean. */
function scalarValue(file: string, dtype: NumpyDType, raw: Uint8Array): number | bigint | boolean {
  if (raw.length !== bytesPerElement(dtype.dtype)) throw new WeightFileError(file, `numpy ${dtype.code} scalar of ${raw.length} bytes`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.length);
  const le = dtype.littleEndian;
  switch (dtype.dtype) {
    case 'float64':
      return view.getFloat64(0, le);
    case 'float32':
      return view.getFloat32(0, le);
    case 'float16':
      return toFloat32<Tensor>({ dtype: 'float16', shape: [1], data: Uint16Array.of(view.getUint16(0, le)) }).data[0];
    case 'int32':
      return view.getInt32(0, le);
    case 'int64': {
      const n = view.getBigInt64(0, le);
      return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
    }
    case 'uint8':
      return view.getUint8(0);
    case 'bool':
      return view.getUint8(0) !== 0;
    default:
      throw new WeightFileError(file, `numpy ${dtype.code} scalars are not supported`);
  }
}

/** The numpy globals allowed in a checkpoint's pickle, by qualified name (both numpy 1 and 2 module paths). */
export function numpyGlobals(file: string): Map<string, unknown> {
  const bad = (problem: string): never => {
    throw new WeightFileError(file, problem);
  };
  const callable = (qualifiedName: string, call: (args: unknown[]) => unknown): PyCallable => ({ qualifiedName, call });
  const dtype = callable('numpy.dtype', ([code]) => {
    const key = typeof code === 'string' ? code.replace(/^[<>|=]/, '') : '';
    const known = NUMPY_DTYPES[key === 'b' || key === '?' ? 'b1' : key];
    return known ? new NumpyDType(file, key, known) : bad(`numpy dtype ${String(code)} is not supported (numbers and booleans only)`);
  });
  const scalar = callable('numpy.core.multiarray.scalar', ([type, raw]) => {
    if (!(type instanceof NumpyDType) || !(raw instanceof Uint8Array)) return bad('numpy scalar without a dtype and raw bytes (object scalars are not supported)');
    return scalarValue(file, type, raw);
  });
  const reconstruct = callable('numpy.core.multiarray._reconstruct', ([cls]) => (cls === NDARRAY ? new NumpyArray(file) : bad('numpy _reconstruct of something else than an ndarray')));
  const out = new Map<string, unknown>([
    ['numpy.dtype', dtype],
    ['numpy.ndarray', NDARRAY],
  ]);
  for (const module of ['numpy.core.multiarray', 'numpy._core.multiarray']) {
    out.set(`${module}.scalar`, scalar);
    out.set(`${module}._reconstruct`, reconstruct);
  }
  return out;
}
