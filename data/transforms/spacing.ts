import type { Volume } from '../volume';
import { allClose, columnNorms, identity, linearPart, matmul, roundHalfEven, solve } from './matrix';
import { resampleNearest, resampleTrilinear } from './resample';
import { BadVolumeError } from '../nifti/errors';

/** MONAI's AFFINE_TOL. */
const AFFINE_TOL = 1e-3;
/** 1 GiB of float32; more than a whole-body CT at 1.5 mm. Guards against absurd or strongly sheared affines. */
const MAX_OUTPUT_VOXELS = 2 ** 28;

/** A voxel grid: its shape and voxel-to-world affine (row-major 4x4). */
export interface Grid {
  readonly shape: readonly [number, number, number];
  readonly affine: readonly number[];
}

/** The output grid of Spacing for an input grid, and how input voxel indices follow from output ones. */
export interface SpacingPlan extends Grid {
  /** Output voxel index -> input voxel index (row-major 4x4). */
  readonly xform: readonly number[];
  /** MONAI skips resampling (the grid is already the target one); the output is the input, affine included. */
  readonly unchanged: boolean;
}

/**
 * MONAI 1.3.2 Spacing's geometry (diagonal False, scale_extent False): new voxel sizes with the rotation kept,
 * output shape from the corner extent rounded half to even, origin at the corner that is smallest in the new grid.
 */
export function spacingPlan(grid: Grid, pixdim: readonly [number, number, number], source = 'volume'): SpacingPlan {
  const affine = grid.affine;
  const current = columnNorms(affine);
  // A voxel size already within AFFINE_TOL of the target is kept as it is.
  const target = pixdim.map((p, i) => (Math.abs(current[i] - p) <= AFFINE_TOL ? current[i] : p));
  const newAffine = zoomAffine(affine, target);
  const { shape, offset } = shapeAndOffset(grid.shape, affine, newAffine);
  for (let i = 0; i < 3; i++) newAffine[i * 4 + 3] = offset[i];

  if (shape[0] * shape[1] * shape[2] > MAX_OUTPUT_VOXELS) {
    const problem = `resampling to ${pixdim.join('x')} mm would give ${shape.join('x')} voxels (absurd or sheared affine)`;
    throw new BadVolumeError(source, problem);
  }
  const xform = solve(affine, newAffine, 4, 4);
  const sameShape = shape.every((n, i) => n === grid.shape[i]);
  if (sameShape && (allClose(affine, newAffine, AFFINE_TOL) || allClose(xform, identity(4), AFFINE_TOL))) {
    // MONAI skips resampling here and keeps the input affine.
    return { shape: grid.shape, affine: [...affine], xform: identity(4), unchanged: true };
  }
  return { shape, affine: newAffine, xform, unchanged: false };
}

/**
 * MONAI 1.3.2 Spacing (bilinear, padding border, align_corners False, float64 computation): the grid of
 * spacingPlan, trilinear resampling clamped at the border.
 */
export function resampleToSpacing(volume: Volume, pixdim: readonly [number, number, number], source = 'volume'): Volume {
  const plan = spacingPlan(volume, pixdim, source);
  if (plan.unchanged) return { data: volume.data, shape: volume.shape, affine: plan.affine };
  return { data: resampleTrilinear(volume.data, volume.shape, plan.xform, plan.shape), shape: plan.shape, affine: plan.affine };
}

/**
 * MONAI SpatialResample with mode "nearest" (border padding) of `volume` onto `target`, e.g. a label map onto the
 * Spacing grid of its image: output voxel o reads the input voxel nearest to inverse(affine) * target.affine * o.
 * A target equal to the volume's own grid returns the volume's values unchanged.
 */
export function resampleNearestOnto(volume: Volume, target: Grid): Volume {
  const xform = solve(volume.affine, target.affine, 4, 4);
  const sameShape = target.shape.every((n, i) => n === volume.shape[i]);
  const shape: [number, number, number] = [target.shape[0], target.shape[1], target.shape[2]];
  if (sameShape && allClose(xform, identity(4), 1e-9, 0)) return { data: volume.data, shape, affine: [...target.affine] };
  return { data: resampleNearest(volume.data, volume.shape, xform, shape), shape, affine: [...target.affine] };
}

/**
 * MONAI zoom_affine (diagonal False): splits the 3x3 part into rotation and scale by a Cholesky factorisation,
 * drops the shear and sets the scale to `zooms`. The translation is zero.
 */
export function zoomAffine(affine: readonly number[], zooms: readonly number[]): number[] {
  const rzs = linearPart(affine);
  const gram = matmul(transpose3(rzs), rzs, 3, 3, 3);
  const zs = transpose3(cholesky3(gram));
  const rotation = matmul(rzs, solve(zs, identity(3), 3, 3), 3, 3, 3);
  const s = [0, 1, 2].map((i) => Math.sign(zs[i * 4]) * Math.abs(zooms[i]));
  const out = identity(4);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) out[i * 4 + j] = rotation[i * 3 + j] * s[j];
  return out;
}

function transpose3(m: readonly number[]): number[] {
  return [m[0], m[3], m[6], m[1], m[4], m[7], m[2], m[5], m[8]];
}

/** Lower Cholesky factor of a symmetric positive-definite 3x3 (LAPACK potf2 order, scaling by the reciprocal). */
function cholesky3(a: readonly number[]): number[] {
  const l = new Array<number>(9).fill(0);
  for (let j = 0; j < 3; j++) {
    let d = a[j * 3 + j];
    for (let k = 0; k < j; k++) d -= l[j * 3 + k] * l[j * 3 + k];
    if (!(d > 0)) throw new Error('affine is not positive definite');
    const ljj = Math.sqrt(d);
    l[j * 3 + j] = ljj;
    for (let i = j + 1; i < 3; i++) {
      let s = a[i * 3 + j];
      for (let k = 0; k < j; k++) s -= l[i * 3 + k] * l[j * 3 + k];
      l[i * 3 + j] = s * (1 / ljj);
    }
  }
  return l;
}

/**
 * MONAI compute_shape_offset (scale_extent False): the input grid's corners in output voxel coordinates give the
 * output shape (extent + 1, rounded half to even); the offset is the world position of the corner that is
 * smallest along every output axis, or a centre alignment when there is none.
 */
export function shapeAndOffset(
  inShape: readonly [number, number, number],
  inAffine: readonly number[],
  outAffine: readonly number[],
): { shape: [number, number, number]; offset: number[] } {
  const m = solve(outAffine, inAffine, 4, 4);
  const corners: number[][] = [];
  for (const a of [0, inShape[0] - 1]) {
    for (const b of [0, inShape[1] - 1]) for (const c of [0, inShape[2] - 1]) corners.push([a, b, c, 1]);
  }
  const dist = corners.map((c) => [0, 1, 2, 3].map((r) => c.reduce((s, v, k) => s + m[r * 4 + k] * v, 0)));
  const shape = [0, 1, 2].map((r) => {
    const values = dist.map((d) => d[r] / d[3]);
    return roundHalfEven(Math.max(...values) - Math.min(...values) + 1);
  }) as [number, number, number];
  const smallest = corners.findIndex((_, i) =>
    [0, 1, 2].every((r) => Math.abs(Math.min(...dist.map((d) => d[r] - dist[i][r]))) <= 1e-8),
  );
  let offset: number[];
  if (smallest >= 0) {
    const c = corners[smallest];
    offset = [0, 1, 2].map((r) => c.reduce((s, v, k) => s + inAffine[r * 4 + k] * v, 0));
  } else {
    offset = [0, 1, 2].map((r) => {
      let s = 0;
      for (let k = 0; k < 3; k++) s += inAffine[r * 4 + k] * (inShape[k] / 2) - outAffine[r * 4 + k] * (shape[k] / 2);
      return s + inAffine[r * 4 + 3];
    });
  }
  return { shape, offset };
}
