/**
 * Trilinear resampling with PyTorch grid_sample's border padding: `xform` (row-major 4x4) maps an output voxel
 * index to a (fractional) input voxel index; coordinates are clamped to [0, n - 1] per axis. Computed in float64,
 * stored as float32. An axis-aligned `xform` (the usual case after orientation) uses per-axis index/weight tables.
 */
export function resampleTrilinear(
  src: Float32Array,
  inShape: readonly [number, number, number],
  xform: readonly number[],
  outShape: readonly [number, number, number],
): Float32Array {
  return isAxisAligned(xform) ? resampleSeparable(src, inShape, xform, outShape) : resampleGeneral(src, inShape, xform, outShape);
}

function isAxisAligned(xform: readonly number[]): boolean {
  return [1, 2, 4, 6, 8, 9].every((i) => xform[i] === 0);
}

/** Distance from a .5 below which a coordinate counts as an exact tie (float64 rounding of the same grid maths). */
const TIE_TOLERANCE = 1e-9;

/**
 * Nearest index of coordinate `c` along an axis of `n` voxels with border padding: ties (|c - (k + 0.5)| < 1e-9)
 * go up to k + 1, which is what MONAI 1.3.2's grid_sample path gives on the reference grids (see the segmentation
 * fixture README: the true tie direction depends on the last bits of its normalised coordinates).
 */
function nearestIndex(c: number, n: number): number {
  const i = Math.floor(c + 0.5 + TIE_TOLERANCE);
  return i < 0 ? 0 : i > n - 1 ? n - 1 : i;
}

/**
 * Nearest-neighbour resampling (label maps) with border padding: `xform` maps an output voxel index to a
 * fractional input voxel index, as for resampleTrilinear; values are copied, never blended.
 */
export function resampleNearest(src: Float32Array, [nx, ny, nz]: Shape, m: readonly number[], [ox, oy, oz]: Shape): Float32Array {
  const out = new Float32Array(ox * oy * oz);
  let d = 0;
  if (isAxisAligned(m)) {
    const ix = Int32Array.from({ length: ox }, (_, o) => nearestIndex(m[0] * o + m[3], nx) * ny * nz);
    const iy = Int32Array.from({ length: oy }, (_, o) => nearestIndex(m[5] * o + m[7], ny) * nz);
    const iz = Int32Array.from({ length: oz }, (_, o) => nearestIndex(m[10] * o + m[11], nz));
    for (let x = 0; x < ox; x++) for (let y = 0; y < oy; y++) {
      const row = ix[x] + iy[y];
      for (let z = 0; z < oz; z++) out[d++] = src[row + iz[z]];
    }
    return out;
  }
  for (let x = 0; x < ox; x++) for (let y = 0; y < oy; y++) for (let z = 0; z < oz; z++) {
    const i = nearestIndex(m[0] * x + m[1] * y + m[2] * z + m[3], nx);
    const j = nearestIndex(m[4] * x + m[5] * y + m[6] * z + m[7], ny);
    const k = nearestIndex(m[8] * x + m[9] * y + m[10] * z + m[11], nz);
    out[d++] = src[(i * ny + j) * nz + k];
  }
  return out;
}

/** Per output index along one axis: the two input neighbours and their weights. */
export interface AxisTable {
  readonly lo: Int32Array;
  readonly hi: Int32Array;
  readonly wLo: Float64Array;
  readonly wHi: Float64Array;
}

export function emptyTable(count: number): AxisTable {
  return { lo: new Int32Array(count), hi: new Int32Array(count), wLo: new Float64Array(count), wHi: new Float64Array(count) };
}

/** Sample positions `scale * o + shift` clamped to [0, n - 1] (grid_sample's border padding). */
function borderTable(n: number, count: number, scale: number, shift: number): AxisTable {
  const table = emptyTable(count);
  for (let o = 0; o < count; o++) {
    const c = Math.min(Math.max(scale * o + shift, 0), n - 1);
    const i0 = Math.floor(c);
    table.lo[o] = i0;
    table.hi[o] = Math.min(i0 + 1, n - 1);
    table.wLo[o] = i0 + 1 - c;
    table.wHi[o] = c - i0;
  }
  return table;
}

type Shape = readonly [number, number, number];

function resampleSeparable(src: Float32Array, inShape: Shape, m: readonly number[], outShape: Shape): Float32Array {
  const tables = [0, 1, 2].map((a) => borderTable(inShape[a], outShape[a], m[a * 5], m[a * 4 + 3]));
  return separableTrilinear(src, inShape, tables);
}

/** Trilinear interpolation whose sample positions are a tensor product of per-axis tables. */
export function separableTrilinear(src: Float32Array, [, ny, nz]: Shape, [tx, ty, tz]: readonly AxisTable[]): Float32Array {
  const [ox, oy, oz] = [tx.lo.length, ty.lo.length, tz.lo.length];
  const out = new Float32Array(ox * oy * oz);
  let d = 0;
  for (let x = 0; x < ox; x++) {
    const x0 = tx.lo[x] * ny, x1 = tx.hi[x] * ny, wx0 = tx.wLo[x], wx1 = tx.wHi[x];
    for (let y = 0; y < oy; y++) {
      const a00 = (x0 + ty.lo[y]) * nz, a01 = (x0 + ty.hi[y]) * nz, a10 = (x1 + ty.lo[y]) * nz, a11 = (x1 + ty.hi[y]) * nz;
      const w00 = wx0 * ty.wLo[y], w01 = wx0 * ty.wHi[y], w10 = wx1 * ty.wLo[y], w11 = wx1 * ty.wHi[y];
      for (let z = 0; z < oz; z++) {
        const z0 = tz.lo[z], z1 = tz.hi[z], wz0 = tz.wLo[z], wz1 = tz.wHi[z];
        out[d++] =
          w00 * (wz0 * src[a00 + z0] + wz1 * src[a00 + z1]) +
          w01 * (wz0 * src[a01 + z0] + wz1 * src[a01 + z1]) +
          w10 * (wz0 * src[a10 + z0] + wz1 * src[a10 + z1]) +
          w11 * (wz0 * src[a11 + z0] + wz1 * src[a11 + z1]);
      }
    }
  }
  return out;
}

function resampleGeneral(
  src: Float32Array,
  [nx, ny, nz]: readonly [number, number, number],
  m: readonly number[],
  [ox, oy, oz]: readonly [number, number, number],
): Float32Array {
  const out = new Float32Array(ox * oy * oz);
  const sx = ny * nz;
  let d = 0;
  for (let x = 0; x < ox; x++) {
    for (let y = 0; y < oy; y++) {
      for (let z = 0; z < oz; z++) {
        const cx = Math.min(Math.max(m[0] * x + m[1] * y + m[2] * z + m[3], 0), nx - 1);
        const cy = Math.min(Math.max(m[4] * x + m[5] * y + m[6] * z + m[7], 0), ny - 1);
        const cz = Math.min(Math.max(m[8] * x + m[9] * y + m[10] * z + m[11], 0), nz - 1);
        const x0 = Math.floor(cx), y0 = Math.floor(cy), z0 = Math.floor(cz);
        const x1 = Math.min(x0 + 1, nx - 1), y1 = Math.min(y0 + 1, ny - 1), z1 = Math.min(z0 + 1, nz - 1);
        const fx = cx - x0, fy = cy - y0, fz = cz - z0;
        const gx = x0 + 1 - cx, gy = y0 + 1 - cy, gz = z0 + 1 - cz;
        const v = (i: number, j: number, k: number) => src[i * sx + j * nz + k];
        out[d++] =
          gx * (gy * (gz * v(x0, y0, z0) + fz * v(x0, y0, z1)) + fy * (gz * v(x0, y1, z0) + fz * v(x0, y1, z1))) +
          fx * (gy * (gz * v(x1, y0, z0) + fz * v(x1, y0, z1)) + fy * (gz * v(x1, y1, z0) + fz * v(x1, y1, z1)));
      }
    }
  }
  return out;
}
