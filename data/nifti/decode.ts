import type { NiftiHeader } from './header';
import { DATATYPES } from './header';

const TILE = 32;

type ElementArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** Typed view of the stored elements (`raw` is swapped in place to little-endian when the file is big-endian). */
function elements(header: NiftiHeader, raw: Uint8Array): ElementArray {
  const size = DATATYPES[header.datatype].bytes;
  if (!header.littleEndian && size > 1) swapBytes(raw, size);
  const { buffer, byteOffset } = raw;
  const n = raw.byteLength / size;
  switch (header.datatypeName) {
    case 'uint8': return raw;
    case 'int8': return new Int8Array(buffer, byteOffset, n);
    case 'int16': return new Int16Array(buffer, byteOffset, n);
    case 'uint16': return new Uint16Array(buffer, byteOffset, n);
    case 'int32': return new Int32Array(buffer, byteOffset, n);
    case 'uint32': return new Uint32Array(buffer, byteOffset, n);
    case 'float32': return new Float32Array(buffer, byteOffset, n);
    case 'float64': return new Float64Array(buffer, byteOffset, n);
    case 'int64': return new BigInt64Array(buffer, byteOffset, n);
    case 'uint64': return new BigUint64Array(buffer, byteOffset, n);
  }
}

function swapBytes(raw: Uint8Array, size: number): void {
  for (let i = 0; i < raw.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = raw[a];
      raw[a] = raw[b];
      raw[b] = t;
    }
  }
}

/** The read scaling nibabel applies: none when scl_slope is 0 or not finite, or when it is exactly (1, 0). */
export function effectiveScaling(header: NiftiHeader): { slope: number; inter: number } | null {
  const { sclSlope: slope, sclInter: inter } = header;
  if (slope === 0 || !Number.isFinite(slope)) return null;
  if (slope === 1 && inter === 0) return null;
  return { slope, inter };
}

/**
 * Whether nibabel scales in float32: a NIfTI-1 slope is a float32, and numpy keeps float32 for the small integer
 * types and float32 data; int32/int64/uint32/float64 data (or a NIfTI-2 float64 slope) promote to float64.
 */
function scalesInFloat32(header: NiftiHeader): boolean {
  return header.version === 1 && ['uint8', 'int8', 'int16', 'uint16', 'float32'].includes(header.datatypeName);
}

/**
 * Decodes the stored voxels (NIfTI order, x fastest) into float32 values after read scaling, transposed to the
 * Volume's C order (z fastest). Returns the values and how many of them are NaN or infinite.
 */
export function decodeVoxels(header: NiftiHeader, raw: Uint8Array): { data: Float32Array; nonFinite: number } {
  const src = elements(header, raw);
  const [nx, ny, nz] = header.shape;
  const out = new Float32Array(nx * ny * nz);
  const scaling = effectiveScaling(header);
  const f32 = scalesInFloat32(header);
  const slope = scaling ? (f32 ? Math.fround(scaling.slope) : scaling.slope) : 1;
  const inter = scaling ? (f32 ? Math.fround(scaling.inter) : scaling.inter) : 0;
  const values: ArrayLike<number> =
    src instanceof BigInt64Array || src instanceof BigUint64Array ? Float64Array.from(src, Number) : src;
  const nxy = nx * ny;
  // Blocks of TILE slices: the writes are runs of TILE along z, the reads TILE streams advancing along x.
  for (let z0 = 0; z0 < nz; z0 += TILE) {
    const z1 = Math.min(z0 + TILE, nz);
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        let s = (z0 * ny + y) * nx + x;
        let d = (x * ny + y) * nz + z0;
        for (let z = z0; z < z1; z++, s += nxy, d++) {
          let v = values[s];
          if (scaling) v = f32 ? Math.fround(Math.fround(v * slope) + inter) : v * slope + inter;
          out[d] = v;
        }
      }
    }
  }
  let nonFinite = 0;
  for (let i = 0; i < out.length; i++) if (!Number.isFinite(out[i])) nonFinite++;
  return { data: out, nonFinite };
}
