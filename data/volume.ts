/**
 * A single-channel 3-D image in MONAI's array order: `data[(x * ny + y) * nz + z]` for voxel (x, y, z), i.e.
 * C-order over (X, Y, Z) with Z fastest, X/Y/Z being the NIfTI voxel axes i/j/k.
 * `affine` is the 4x4 voxel-to-world matrix (RAS millimetres, as MONAI carries it), row-major.
 */
export interface Volume {
  readonly data: Float32Array;
  readonly shape: readonly [number, number, number];
  readonly affine: readonly number[];
}

export function voxelCount(shape: readonly [number, number, number]): number {
  return shape[0] * shape[1] * shape[2];
}
