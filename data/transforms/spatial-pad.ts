import type { Volume } from '../volume';
import { matmul4, translation } from './matrix';

/** Padding [before, after] per axis that MONAI's symmetric SpatialPad adds to reach at least `size`. */
export function symmetricPadWidths(shape: readonly number[], size: readonly number[]): [number, number][] {
  return shape.map((n, i) => {
    const total = Math.max(size[i] - n, 0);
    const before = Math.floor(total / 2);
    return [before, total - before];
  });
}

/** MONAI SpatialPad (symmetric, constant 0) to at least `size`; the affine origin moves to the new first voxel. */
export function spatialPad(volume: Volume, size: readonly [number, number, number]): Volume {
  const widths = symmetricPadWidths(volume.shape, size);
  if (widths.every(([b, a]) => b === 0 && a === 0)) return volume;
  const [nx, ny, nz] = volume.shape;
  const grown = (i: number) => volume.shape[i] + widths[i][0] + widths[i][1];
  const shape: [number, number, number] = [grown(0), grown(1), grown(2)];
  const data = new Float32Array(shape[0] * shape[1] * shape[2]);
  for (let x = 0; x < nx; x++) {
    for (let y = 0; y < ny; y++) {
      const s = (x * ny + y) * nz;
      const d = ((x + widths[0][0]) * shape[1] + y + widths[1][0]) * shape[2] + widths[2][0];
      data.set(volume.data.subarray(s, s + nz), d);
    }
  }
  return { data, shape, affine: matmul4(volume.affine, translation(widths.map(([b]) => -b))) };
}
