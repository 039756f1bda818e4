import type { Shape } from './shapes';

/**
 * A voxel grid whose axes are parallel to the patient axes (its affine is a scaled signed permutation), so each
 * voxel axis walks along one patient axis. `axisOf[a]` is the patient axis (0 x, 1 y, 2 z) that voxel axis `a`
 * follows and `coords[a][i]` the patient coordinate, in millimetres, of index i along it.
 */
export interface PatientGrid {
  readonly shape: readonly [number, number, number];
  readonly axisOf: readonly [number, number, number];
  readonly coords: readonly [Float64Array, Float64Array, Float64Array];
}

/** Which labels a paint may overwrite: `undefined` means all. */
export type LabelSet = Uint8Array | undefined;

export function labelSet(...labels: number[]): Uint8Array {
  const set = new Uint8Array(256);
  for (const l of labels) set[l] = 1;
  return set;
}

/** A second label map that a paint also writes: `value` on every voxel the paint sets (the organ map). */
export interface PaintAlso {
  readonly labels: Uint8Array;
  readonly value: number;
}

/**
 * Sets `labels` to `value` on every voxel whose centre is inside `shape` and whose current label `over` allows,
 * and `also.labels` to `also.value` on the same voxels.
 */
export function paint(labels: Uint8Array, grid: PatientGrid, shape: Shape, value: number, over?: LabelSet, also?: PaintAlso): void {
  const ranges = [0, 1, 2].map((a) => indexRange(grid.coords[a], shape.lo[grid.axisOf[a]], shape.hi[grid.axisOf[a]]));
  if (ranges.some((r) => r[0] > r[1])) return;
  const [, n1, n2] = grid.shape;
  const [c0, c1, c2] = grid.coords;
  const [w0, w1, w2] = grid.axisOf;
  const p = new Float64Array(3);
  for (let i = ranges[0][0]; i <= ranges[0][1]; i++) {
    p[w0] = c0[i];
    for (let j = ranges[1][0]; j <= ranges[1][1]; j++) {
      p[w1] = c1[j];
      const row = (i * n1 + j) * n2;
      for (let k = ranges[2][0]; k <= ranges[2][1]; k++) {
        const at = row + k;
        if (over !== undefined && over[labels[at]] === 0) continue;
        p[w2] = c2[k];
        if (shape.contains(p[0], p[1], p[2])) {
          labels[at] = value;
          if (also !== undefined) also.labels[at] = also.value;
        }
      }
    }
  }
}

/** The first and last index whose coordinate lies in [lo, hi]; coordinates are evenly spaced, up or down. */
function indexRange(coords: Float64Array, lo: number, hi: number): [number, number] {
  const n = coords.length;
  const step = n > 1 ? coords[1] - coords[0] : 1;
  const a = (lo - coords[0]) / step;
  const b = (hi - coords[0]) / step;
  const first = Math.max(0, Math.ceil(Math.min(a, b) - 1e-9));
  const last = Math.min(n - 1, Math.floor(Math.max(a, b) + 1e-9));
  return [first, last];
}
