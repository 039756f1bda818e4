/**
 * Surfaces of label-map classes and exact Euclidean distances between them in millimetres, as MONAI's
 * `get_mask_edges` (a voxel of the class with a 6-neighbour outside it or outside the image) and
 * `get_surface_distance` (scipy's exact distance transform with the voxel spacing), restricted to the bounding box
 * of the two masks: distances between voxels of the box do not depend on what lies outside it.
 */
import type { Box } from '../transforms/crop-foreground';
import { Triple, boxSize } from './class-boxes';

/** The surface voxels of `classIndex` in `labels` ([X, Y, Z] C order) within `box`, as a box-sized 0/1 mask. */
export function surfaceMask(labels: ArrayLike<number>, shape: Triple, classIndex: number, box: Box): Uint8Array {
  const [nx, ny, nz] = shape;
  const [bx, by, bz] = boxSize(box);
  const mask = new Uint8Array(bx * by * bz);
  const inClass = (x: number, y: number, z: number) =>
    x >= 0 && y >= 0 && z >= 0 && x < nx && y < ny && z < nz && labels[(x * ny + y) * nz + z] === classIndex;
  let i = 0;
  for (let x = box.start[0]; x < box.end[0]; x++) {
    for (let y = box.start[1]; y < box.end[1]; y++) {
      for (let z = box.start[2]; z < box.end[2]; z++, i++) {
        if (labels[(x * ny + y) * nz + z] !== classIndex) continue;
        const interior =
          inClass(x - 1, y, z) && inClass(x + 1, y, z) && inClass(x, y - 1, z) && inClass(x, y + 1, z) && inClass(x, y, z - 1) && inClass(x, y, z + 1);
        if (!interior) mask[i] = 1;
      }
    }
  }
  return mask;
}

/**
 * Squared distance in mm^2 from every voxel of a [X, Y, Z] grid to the nearest voxel where `features` is 1
 * (Infinity when there is none), by the separable lower-envelope transform of Felzenszwalb and Huttenlocher, one
 * axis at a time: exact, O(voxels) per axis. The sum runs axis 0, 1, 2, as scipy adds the components.
 */
export function squaredDistanceTransform(features: Uint8Array, shape: Triple, spacing: Triple): Float64Array {
  const [nx, ny, nz] = shape;
  const field = new Float64Array(features.length);
  for (let i = 0; i < features.length; i++) field[i] = features[i] ? 0 : Infinity;
  const longest = Math.max(nx, ny, nz);
  const work = { f: new Float64Array(longest), out: new Float64Array(longest), sites: new Int32Array(longest), bounds: new Float64Array(longest + 1) };
  const strides: Triple = [ny * nz, nz, 1];
  for (let axis = 0; axis < 3; axis++) {
    const length = shape[axis];
    const stride = strides[axis];
    const others = [0, 1, 2].filter((a) => a !== axis);
    for (let u = 0; u < shape[others[0]]; u++) {
      for (let v = 0; v < shape[others[1]]; v++) {
        const base = u * strides[others[0]] + v * strides[others[1]];
        for (let k = 0; k < length; k++) work.f[k] = field[base + k * stride];
        lowerEnvelope(work, length, spacing[axis]);
        for (let k = 0; k < length; k++) field[base + k * stride] = work.out[k];
      }
    }
  }
  return field;
}

/** out[q] = min over p of f[p] + (s (q - p))^2, over the finite f[p]. */
function lowerEnvelope(work: { f: Float64Array; out: Float64Array; sites: Int32Array; bounds: Float64Array }, n: number, s: number): void {
  const { f, out, sites, bounds } = work;
  let k = -1;
  for (let q = 0; q < n; q++) {
    if (f[q] === Infinity) continue;
    const uq = s * q;
    while (k >= 0) {
      const p = sites[k];
      const up = s * p;
      const meet = (f[q] + uq * uq - (f[p] + up * up)) / (2 * (uq - up));
      if (meet > bounds[k]) {
        k++;
        sites[k] = q;
        bounds[k] = meet;
        break;
      }
      k--;
    }
    if (k < 0) {
      k = 0;
      sites[0] = q;
      bounds[0] = -Infinity;
    }
  }
  if (k < 0) {
    out.fill(Infinity, 0, n);
    return;
  }
  let j = 0;
  for (let q = 0; q < n; q++) {
    while (j < k && bounds[j + 1] < s * q) j++;
    const d = s * (q - sites[j]);
    out[q] = f[sites[j]] + d * d;
  }
}

/** Euclidean distances (mm, float32 as MONAI returns them) from each `from` voxel to the nearest `to` voxel. */
export function directedSurfaceDistances(from: Uint8Array, to: Uint8Array, shape: Triple, spacing: Triple): Float32Array {
  const squared = squaredDistanceTransform(to, shape, spacing);
  let count = 0;
  for (const v of from) count += v;
  const distances = new Float32Array(count);
  for (let i = 0, j = 0; i < from.length; i++) if (from[i]) distances[j++] = Math.sqrt(squared[i]);
  return distances;
}

