import type { Rng } from '../../common/rng';

/**
 * VoCo's position labels of a random crop whose x-y corner is `start` (region voxels): for each base crop (i, j)
 * of the `grid` x `grid` tiling, the area of its overlap with the random crop in the x-y plane divided by the
 * crop's area. Entry i * grid + j is base crop i along x and j along y (upstream's order).
 */
export function positionLabels(start: readonly [number, number], roi: number, grid: number): Float32Array {
  const labels = new Float32Array(grid * grid);
  const overlap = (a: number, base: number): number => Math.max(0, Math.min(a + roi, base + roi) - Math.max(a, base));
  for (let i = 0; i < grid; i++) {
    const dx = overlap(start[0], i * roi);
    for (let j = 0; j < grid; j++) labels[i * grid + j] = (dx * overlap(start[1], j * roi)) / (roi * roi);
  }
  return labels;
}

/**
 * The x-y corner of a random crop, as upstream draws it: the centre uniform over the integers in
 * [roi/2, grid*roi - roi/2) (numpy's randint excludes the high end), so a corner runs from 0 to grid*roi - roi - 1
 * and the crop never sits exactly on the last base crop's column or row.
 */
export function randomCropStart(rng: Rng, roi: number, grid: number): [number, number] {
  const last = grid * roi - roi - 1;
  return [rng.int(0, last), rng.int(0, last)];
}
