import type { Volume } from '../volume';
import { matmul4, translation } from './matrix';

export interface Box {
  readonly start: [number, number, number];
  /** Exclusive. */
  readonly end: [number, number, number];
}

/**
 * MONAI generate_spatial_bounding_box with select_fn `value > 0`, margin 0: the smallest box holding every
 * positive voxel; all zeros when there is none.
 */
export function foregroundBox(volume: Volume): Box {
  const [nx, ny, nz] = volume.shape;
  const lo = [nx, ny, nz];
  const hi = [-1, -1, -1];
  const data = volume.data;
  let i = 0;
  for (let x = 0; x < nx; x++) {
    for (let y = 0; y < ny; y++) {
      for (let z = 0; z < nz; z++, i++) {
        if (!(data[i] > 0)) continue;
        if (x < lo[0]) lo[0] = x;
        if (x > hi[0]) hi[0] = x;
        if (y < lo[1]) lo[1] = y;
        if (y > hi[1]) hi[1] = y;
        if (z < lo[2]) lo[2] = z;
        if (z > hi[2]) hi[2] = z;
      }
    }
  }
  if (hi[0] < 0) return { start: [0, 0, 0], end: [0, 0, 0] };
  return { start: [lo[0], lo[1], lo[2]], end: [hi[0] + 1, hi[1] + 1, hi[2] + 1] };
}

/** Copies the box out of the volume; the affine origin moves to the box start. */
export function cropBox(volume: Volume, { start, end }: Box): Volume {
  const shape: [number, number, number] = [end[0] - start[0], end[1] - start[1], end[2] - start[2]];
  const [, ny, nz] = volume.shape;
  const data = new Float32Array(shape[0] * shape[1] * shape[2]);
  let d = 0;
  for (let x = 0; x < shape[0]; x++) {
    for (let y = 0; y < shape[1]; y++) {
      const s = ((start[0] + x) * ny + start[1] + y) * nz + start[2];
      data.set(volume.data.subarray(s, s + shape[2]), d);
      d += shape[2];
    }
  }
  return { data, shape, affine: matmul4(volume.affine, translation(start)) };
}

/** MONAI CropForeground (value > 0, margin 0, k_divisible 1). */
export function cropForeground(volume: Volume): Volume {
  return cropBox(volume, foregroundBox(volume));
}

/**
 * The inverse of cropBox (MONAI's CropForeground.inverse): `data` fills the box of the grid `target`; the rest of
 * the grid is zero. The result is on `target` (its shape and affine).
 */
export function uncropBox(
  box: Pick<Volume, 'data' | 'shape'>,
  { start, end }: Box,
  target: { readonly shape: readonly [number, number, number]; readonly affine: readonly number[] },
): Volume {
  const { shape } = target;
  if (![0, 1, 2].every((a) => box.shape[a] === end[a] - start[a] && start[a] >= 0 && end[a] <= shape[a])) {
    throw new Error(`uncropBox: a ${box.shape.join('x')} volume is not the box ${start}..${end} of ${shape.join('x')}`);
  }
  const [ny, nz] = [shape[1], shape[2]];
  const data = new Float32Array(shape[0] * shape[1] * shape[2]);
  const [bx, by, bz] = box.shape;
  let s = 0;
  for (let x = 0; x < bx; x++) {
    for (let y = 0; y < by; y++, s += bz) {
      data.set(box.data.subarray(s, s + bz), ((start[0] + x) * ny + start[1] + y) * nz + start[2]);
    }
  }
  return { data, shape: [shape[0], shape[1], shape[2]], affine: [...target.affine] };
}
