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

/** How Orientation to RAS rearranges a grid: the RAS shape and, per RAS axis, the stride into the input array. */
interface OrientationPlan {
  readonly outShape: [number, number, number];
  /** Input element offset of RAS voxel (x, y, z): base + x * step[0] + y * step[1] + z * step[2]. */
  readonly base: number;
  readonly step: readonly [number, number, number];
  /** RAS voxel index -> input voxel index (homogeneous, row-major 4x4). */
  readonly outToIn: readonly number[];
  readonly identity: boolean;
}

function orientationPlan(affine: readonly number[], inShape: readonly [number, number, number]): OrientationPlan {
  const orientation = axisOrientations(affine);
  const inStrides = [inShape[1] * inShape[2], inShape[2], 1];
  const outShape: [number, number, number] = [0, 0, 0];
  const step: [number, number, number] = [0, 0, 0];
  let base = 0;
  const outToIn = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  orientation.forEach(({ worldAxis, flip }, axis) => {
    outShape[worldAxis] = inShape[axis];
    step[worldAxis] = flip ? -inStrides[axis] : inStrides[axis];
    if (flip) base += (inShape[axis] - 1) * inStrides[axis];
    outToIn[axis * 4 + worldAxis] = flip ? -1 : 1;
    outToIn[axis * 4 + 3] = flip ? inShape[axis] - 1 : 0;
  });
  const identity = orientation.every((o, axis) => o.worldAxis === axis && !o.flip);
  return { outShape, base, step, outToIn, identity };
}

/**
 * Visits every RAS voxel row: `row(d, s, stepZ)` for the RAS element offset d of (x, y, 0), the input element offset
 * s of the same voxel and the input stride along RAS z.
 */
function forEachRow(plan: OrientationPlan, row: (d: number, s: number, stepZ: number) => void): void {
  const [nx, ny, nz] = plan.outShape;
  let d = 0;
  for (let x = 0; x < nx; x++) {
    for (let y = 0; y < ny; y++, d += nz) row(d, plan.base + x * plan.step[0] + y * plan.step[1], plan.step[2]);
  }
}

/**
 * MONAI's Orientation to RAS: flips and permutes the array so voxel axes i, j, k point to R, A, S as closely as
 * the affine allows; the affine is updated so each voxel keeps its world position.
 */
export function orientRas(volume: Volume): Volume {
  const plan = orientationPlan(volume.affine, volume.shape);
  const affine = matmul4(volume.affine, plan.outToIn);
  if (plan.identity) return { data: volume.data, shape: volume.shape, affine };
  const data = new Float32Array(volume.data.length);
  const src = volume.data;
  const nz = plan.outShape[2];
  forEachRow(plan, (d, s, stepZ) => {
    if (stepZ === 1) data.set(src.subarray(s, s + nz), d);
    else for (let z = 0; z < nz; z++) data[d + z] = src[s + z * stepZ];
  });
  return { data, shape: plan.outShape, affine };
}

/**
 * The inverse of orientRas (MONAI's Orientation.inverse): `volume` is on the RAS grid that orientRas made from
 * `original`; the result is on `original` (its shape and affine), every voxel moved back exactly.
 */
export function undoOrientRas(volume: Volume, original: { readonly shape: readonly [number, number, number]; readonly affine: readonly number[] }): Volume {
  const plan = orientationPlan(original.affine, original.shape);
  if (!plan.outShape.every((n, i) => n === volume.shape[i])) {
    throw new Error(`undoOrientRas: volume ${volume.shape.join('x')} is not the RAS grid ${plan.outShape.join('x')} of the original`);
  }
  const shape: [number, number, number] = [original.shape[0], original.shape[1], original.shape[2]];
  if (plan.identity) return { data: volume.data, shape, affine: [...original.affine] };
  const data = new Float32Array(volume.data.length);
  const src = volume.data;
  const nz = plan.outShape[2];
  forEachRow(plan, (d, s, stepZ) => {
    for (let z = 0; z < nz; z++) data[s + z * stepZ] = src[d + z];
  });
  return { data, shape, affine: [...original.affine] };
}
