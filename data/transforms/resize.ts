import type { Volume } from '../volume';
import { matmul4 } from './matrix';
import { AxisTable, emptyTable, separableTrilinear } from './resample';

/**
 * MONAI Resize with trilinear interpolation and align_corners=True (PyTorch interpolate: source index
 * = dst * (in - 1) / (out - 1), with the scale and weights in float32 as PyTorch's CPU kernel). The affine follows
 * MONAI's scale_affine: voxel size scaled by in/out, centred.
 */
export function resizeTrilinear(volume: Volume, size: readonly [number, number, number]): Volume {
  const inShape = volume.shape;
  if (inShape.every((n, i) => n === size[i])) return volume;
  const tables = [0, 1, 2].map((a) => alignedCornersTable(inShape[a], size[a]));
  const out = separableTrilinear(volume.data, inShape, tables);
  const scale = [0, 1, 2].map((i) => inShape[i] / Math.max(size[i], 1));
  const scaleAffine = [
    scale[0], 0, 0, (scale[0] - 1) / 2,
    0, scale[1], 0, (scale[1] - 1) / 2,
    0, 0, scale[2], (scale[2] - 1) / 2,
    0, 0, 0, 1,
  ];
  return { data: out, shape: [size[0], size[1], size[2]], affine: matmul4(volume.affine, scaleAffine) };
}

function alignedCornersTable(n: number, count: number): AxisTable {
  const f = Math.fround;
  const scale = count > 1 ? f((n - 1) / (count - 1)) : 0;
  const table = emptyTable(count);
  for (let o = 0; o < count; o++) {
    const c = f(scale * o);
    const i0 = Math.min(Math.floor(c), n - 1);
    const lambda = Math.min(Math.max(f(c - i0), 0), 1);
    table.lo[o] = i0;
    table.hi[o] = i0 < n - 1 ? i0 + 1 : i0;
    table.wLo[o] = f(1 - lambda);
    table.wHi[o] = lambda;
  }
  return table;
}
