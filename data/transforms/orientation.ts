import type { Volume } from '../volume';
import { columnNorms, linearPart, matmul4 } from './matrix';

/** For each voxel axis: the world axis (0 R, 1 A, 2 S) it is closest to and whether it points the other way. */
export interface AxisOrientation {
  readonly worldAxis: number;
  readonly flip: boolean;
}

/**
 * nibabel's io_orientation: the orthogonal matrix closest to the direction cosines (polar decomposition), then
 * for each voxel axis in turn the world axis with the largest component, each world axis used once.
 */
export function axisOrientations(affine: readonly number[]): AxisOrientation[] {
  const zooms = columnNorms(affine).map((z) => (z === 0 ? 1 : z));
  const rs = linearPart(affine).map((v, i) => v / zooms[i % 3]);
  const r = closestOrthogonal(rs);
  const result: AxisOrientation[] = [];
  for (let axis = 0; axis < 3; axis++) {
    let best = 0;
    for (let w = 1; w < 3; w++) if (Math.abs(r[w * 3 + axis]) > Math.abs(r[best * 3 + axis])) best = w;
    result.push({ worldAxis: best, flip: r[best * 3 + axis] < 0 });
    for (let j = 0; j < 3; j++) r[best * 3 + j] = 0;
  }
  return result;
}

/** Orthogonal polar factor of a non-singular 3x3 by Newton's iteration X <- (X + X^-T) / 2. */
export function closestOrthogonal(m: readonly number[]): number[] {
  let x = [...m];
  for (let iter = 0; iter < 100; iter++) {
    const invT = inverseTranspose3(x);
    const next = x.map((v, i) => (v + invT[i]) / 2);
    const change = Math.max(...next.map((v, i) => Math.abs(v - x[i])));
    x = next;
    if (change < 1e-15) break;
  }
  return x;
}

function inverseTranspose3(m: readonly number[]): number[] {
  const [a, b, c, d, e, f, g, h, i] = m;
  const cof = [
    e * i - f * h, f * g - d * i, d * h - e * g,
    c * h - b * i, a * i - c * g, b * g - a * h,
    b * f - c * e, c * d - a * f, a * e - b * d,
  ];
  const det = a * cof[0] + b * cof[1] + c * cof[2];
  return cof.map((v) => v / det);
}

/**
 * MONAI's Orientation to RAS: flips and permutes the array so voxel axes i, j, k point to R, A, S as closely as
 * the affine allows; the affine is updated so each voxel keeps its world position.
 */
export function orientRas(volume: Volume): Volume {
  const orientation = axisOrientations(volume.affine);
  const inShape = volume.shape;
  const inStrides = [inShape[1] * inShape[2], inShape[2], 1];
  const outShape: [number, number, number] = [0, 0, 0];
  const step = [0, 0, 0];
  let base = 0;
  // Maps an output voxel index to the input voxel index (homogeneous, row-major 4x4).
  const outToIn = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  orientation.forEach(({ worldAxis, flip }, axis) => {
    outShape[worldAxis] = inShape[axis];
    step[worldAxis] = flip ? -inStrides[axis] : inStrides[axis];
    if (flip) base += (inShape[axis] - 1) * inStrides[axis];
    outToIn[axis * 4 + worldAxis] = flip ? -1 : 1;
    outToIn[axis * 4 + 3] = flip ? inShape[axis] - 1 : 0;
  });
  const affine = matmul4(volume.affine, outToIn);
  const identity = orientation.every((o, axis) => o.worldAxis === axis && !o.flip);
  if (identity) return { data: volume.data, shape: volume.shape, affine };
  const data = new Float32Array(volume.data.length);
  const src = volume.data;
  const nz = outShape[2];
  let d = 0;
  for (let x = 0; x < outShape[0]; x++) {
    for (let y = 0; y < outShape[1]; y++, d += nz) {
      const s = base + x * step[0] + y * step[1];
      if (step[2] === 1) data.set(src.subarray(s, s + nz), d);
      else for (let z = 0; z < nz; z++) data[d + z] = src[s + z * step[2]];
    }
  }
  return { data, shape: outShape, affine };
}
