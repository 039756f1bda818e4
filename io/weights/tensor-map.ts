/**
 * The one tensor type of the weight-file layer: a name, a dtype, a shape and a flat row-major typed array.
 * float16 and bfloat16 values are kept as their raw 16-bit patterns (Node has no 16-bit float array);
 * `toFloat32` widens them.
 */
export type WeightDType = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool';

export const WEIGHT_DTYPES: readonly WeightDType[] = ['float32', 'float16', 'bfloat16', 'float64', 'int64', 'int32', 'uint8', 'bool'];

export interface DataOf {
  float32: Float32Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  float64: Float64Array;
  int64: BigInt64Array;
  int32: Int32Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}

export type TensorData = DataOf[WeightDType];

export interface Tensor {
  readonly dtype: WeightDType;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

export interface NamedTensor extends Tensor {
  readonly name: string;
}

/** Tensors by name, in insertion order (the order of the file or of the model's state dict). */
export type TensorMap = Map<string, NamedTensor>;

interface DTypeInfo {
  readonly bytes: number;
  readonly floating: boolean;
  /** A typed array of `length` elements over `buffer` from `byteOffset` (which must be aligned to `bytes`). */
  readonly view: (buffer: ArrayBufferLike, byteOffset: number, length: number) => TensorData;
}

const INFO: Record<WeightDType, DTypeInfo> = {
  float32: { bytes: 4, floating: true, view: (b, o, n) => new Float32Array(b, o, n) },
  float16: { bytes: 2, floating: true, view: (b, o, n) => new Uint16Array(b, o, n) },
  bfloat16: { bytes: 2, floating: true, view: (b, o, n) => new Uint16Array(b, o, n) },
  float64: { bytes: 8, floating: true, view: (b, o, n) => new Float64Array(b, o, n) },
  int64: { bytes: 8, floating: false, view: (b, o, n) => new BigInt64Array(b, o, n) },
  int32: { bytes: 4, floating: false, view: (b, o, n) => new Int32Array(b, o, n) },
  uint8: { bytes: 1, floating: false, view: (b, o, n) => new Uint8Array(b, o, n) },
  bool: { bytes: 1, floating: false, view: (b, o, n) => new Uint8Array(b, o, n) },
};

export function bytesPerElement(dtype: WeightDType): number {
  return INFO[dtype].bytes;
}

export function isFloating(dtype: WeightDType): boolean {
  return INFO[dtype].floating;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A typed array of `dtype` viewing `length` elements of `buffer` (no copy). */
export function viewAs(dtype: WeightDType, buffer: ArrayBufferLike, byteOffset: number, length: number): TensorData {
  return INFO[dtype].view(buffer, byteOffset, length);
}

/** A zero-filled typed array of `length` elements of `dtype`. */
export function allocate(dtype: WeightDType, length: number): TensorData {
  return viewAs(dtype, new ArrayBuffer(length * INFO[dtype].bytes), 0, length);
}

/** The tensor's bytes, as stored in every weight file format (little-endian, row-major). No copy. */
export function tensorBytes(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Checks that the data's type and length agree with dtype and shape; throws an Error naming the tensor if not. */
export function namedTensor(name: string, dtype: WeightDType, shape: readonly number[], data: TensorData): NamedTensor {
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`tensor "${name}": bad shape [${shape.join(', ')}]`);
  const probe = allocate(dtype, 0);
  if (data.constructor !== probe.constructor) {
    throw new Error(`tensor "${name}": ${dtype} data must be a ${probe.constructor.name}, got ${data.constructor.name}`);
  }
  if (data.length !== numel(shape)) throw new Error(`tensor "${name}": shape [${shape.join(', ')}] needs ${numel(shape)} elements, data has ${data.length}`);
  return { name, dtype, shape: [...shape], data };
}

/** Whether `v` is a tensor of this layer (a TorchTensor from a checkpoint, a NamedTensor, ...). */
export function isTensor(v: unknown): v is Tensor {
  if (typeof v !== 'object' || v === null) return false;
  const t = v as Partial<Tensor>;
  return WEIGHT_DTYPES.includes(t.dtype as WeightDType) && Array.isArray(t.shape) && ArrayBuffer.isView(t.data);
}

/** A TensorMap from a list, refusing duplicate names. */
export function tensorMap(tensors: Iterable<NamedTensor>): TensorMap {
  const map: TensorMap = new Map();
  for (const t of tensors) {
    if (map.has(t.name)) throw new Error(`duplicate tensor name "${t.name}"`);
    map.set(t.name, t);
  }
  return map;
}

/** float16 bits -> float32 value, exact (subnormals, infinities and NaN included). */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

let halfValues: Float32Array | undefined;

/** The float32 value of every float16 bit pattern, built on first use. */
function halfTable(): Float32Array {
  if (!halfValues) {
    halfValues = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfValues[h] = halfToFloat(h);
  }
  return halfValues;
}

/**
 * The tensor as float32: float16 and bfloat16 widened exactly, float64 rounded (as PyTorch's copy into a float32
 * parameter does). Float32 tensors are returned as they are; integer tensors are refused.
 */
export function toFloat32<T extends Tensor>(t: T): T & { dtype: 'float32'; data: Float32Array } {
  const src = t.data;
  let data: Float32Array;
  switch (t.dtype) {
    case 'float32':
      return t as T & { dtype: 'float32'; data: Float32Array };
    case 'float16': {
      const table = halfTable();
      const bits = src as Uint16Array;
      data = new Float32Array(bits.length);
      for (let i = 0; i < bits.length; i++) data[i] = table[bits[i]];
      break;
    }
    case 'bfloat16': {
      // bfloat16 is the upper half of a float32.
      data = new Float32Array(src.length);
      const wide = new Uint32Array(data.buffer);
      const bits = src as Uint16Array;
      for (let i = 0; i < bits.length; i++) wide[i] = bits[i] << 16;
      break;
    }
    case 'float64':
      data = Float32Array.from(src as Float64Array);
      break;
    default:
      throw new Error(`cannot convert ${t.dtype} to float32`);
  }
  return { ...t, dtype: 'float32', data };
}
