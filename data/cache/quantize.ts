import { Float16Array, getFloat16 } from '@petamoriken/float16';

/**
 * How voxel values are stored in a cache entry. Preprocessed CT lies in [0, 1] after the intensity window, so the
 * integer types store `(v - offset) / scale` rounded, with offset/scale taken from the volume's own range:
 * the largest error is scale / 2 (uint16: range / 131070, uint12: range / 8190, uint8: range / 510).
 * uint12 is stored in 16 bits: it only pays with deflate, whose output shrinks with fewer distinct values.
 */
export type CacheDtype = 'float32' | 'float16' | 'uint16' | 'uint12' | 'uint8';

export const CACHE_DTYPES: readonly CacheDtype[] = ['float32', 'float16', 'uint16', 'uint12', 'uint8'];

export interface Quantized {
  readonly dtype: CacheDtype;
  /** Stored values, little-endian. */
  readonly bytes: Uint8Array;
  /** value = stored * scale + offset (integer dtypes; 1 and 0 for the float dtypes). */
  readonly scale: number;
  readonly offset: number;
}

const INTEGER_LEVELS: Partial<Record<CacheDtype, number>> = { uint16: 65535, uint12: 4095, uint8: 255 };

export function bytesPerValue(dtype: CacheDtype): number {
  return dtype === 'float32' ? 4 : dtype === 'uint8' ? 1 : 2;
}

export function quantize(values: Float32Array, dtype: CacheDtype): Quantized {
  const levels = INTEGER_LEVELS[dtype];
  if (levels !== undefined) return quantizeToLevels(values, dtype, levels);
  if (dtype === 'float32') return { dtype, bytes: new Uint8Array(Float32Array.from(values).buffer), scale: 1, offset: 0 };
  // Building a Float16Array from a Float32Array rounds in bulk (about 80x faster than setFloat16 per value).
  return { dtype, bytes: new Uint8Array(new Float16Array(values).buffer), scale: 1, offset: 0 };
}

function quantizeToLevels(values: Float32Array, dtype: CacheDtype, levels: number): Quantized {
  const n = values.length;
  let lo = n > 0 ? Infinity : 0;
  let hi = n > 0 ? -Infinity : 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const scale = hi > lo ? (hi - lo) / levels : 1;
  const inv = 1 / scale;
  const out = new Uint8Array(n * bytesPerValue(dtype));
  const q = dtype === 'uint8' ? out : new Uint16Array(out.buffer);
  for (let i = 0; i < n; i++) q[i] = Math.round((values[i] - lo) * inv);
  return { dtype, bytes: out, scale, offset: lo };
}

/** Decodes `count` values; `bytes` may sit at any offset of its buffer. */
export function dequantize(q: Quantized, count: number): Float32Array {
  const { dtype, bytes, scale, offset } = q;
  if (bytes.byteLength !== count * bytesPerValue(dtype)) {
    throw new Error(`payload holds ${bytes.byteLength} bytes, expected ${count * bytesPerValue(dtype)} for ${count} ${dtype} values`);
  }
  const out = new Float32Array(count);
  const aligned = bytes.byteOffset % bytesPerValue(dtype) === 0 ? bytes : new Uint8Array(bytes);
  switch (dtype) {
    case 'float32':
      out.set(new Float32Array(aligned.buffer, aligned.byteOffset, count));
      break;
    case 'float16': {
      const table = halfTable();
      const src = new Uint16Array(aligned.buffer, aligned.byteOffset, count);
      for (let i = 0; i < count; i++) out[i] = table[src[i]];
      break;
    }
    case 'uint16':
    case 'uint12': {
      const src = new Uint16Array(aligned.buffer, aligned.byteOffset, count);
      for (let i = 0; i < count; i++) out[i] = src[i] * scale + offset;
      break;
    }
    case 'uint8':
      for (let i = 0; i < count; i++) out[i] = bytes[i] * scale + offset;
      break;
  }
  return out;
}

let halfValues: Float32Array | undefined;

/** The value of every float16 bit pattern: decoding by lookup is some 100x faster than bit arithmetic per value. */
function halfTable(): Float32Array {
  if (!halfValues) {
    halfValues = new Float32Array(65536);
    const view = new DataView(new ArrayBuffer(2));
    for (let bits = 0; bits < 65536; bits++) {
      view.setUint16(0, bits, true);
      halfValues[bits] = getFloat16(view, 0, true);
    }
  }
  return halfValues;
}
