/**
 * MONAI 1.3.2's `compute_hausdorff_distance` on label maps, per class, in millimetres: the surface voxels of
 * prediction and truth, the distance of each to the other surface, a percentile (torch.quantile, linear, in
 * float32) or the maximum of each direction, and the larger of the two (or pred -> truth alone when directed).
 *
 * Empty masks, as MONAI: both empty -> NaN. One empty -> every distance is infinite: Infinity without a
 * percentile (or with percentile 0, which MONAI treats as none), but NaN with one, because the quantile
 * interpolates inf + (inf - inf) * w (MONAI issue 9095). So an HD95 of NaN means "not computable" and callers
 * must say which mask was empty.
 */
import type { Box } from '../transforms/crop-foreground';
import { Triple, boxSize, classBoxes, unionBox } from './class-boxes';
import { directedSurfaceDistances, surfaceMask } from './surface-distance';

export interface HausdorffOptions {
  /** Voxel size in mm along X, Y, Z; default 1. */
  readonly spacing?: Triple;
  /** 0..100; undefined (or 0): the maximum. */
  readonly percentile?: number;
  /** Only prediction -> truth distances; default false (both directions). */
  readonly directed?: boolean;
}

/**
 * The Hausdorff distance of each class `first .. numClasses - 1` (default 1: no background) between two label
 * maps of `shape`.
 */
export function hausdorffDistances(
  pred: ArrayLike<number>,
  truth: ArrayLike<number>,
  shape: Triple,
  numClasses: number,
  options: HausdorffOptions = {},
  first = 1,
): number[] {
  if (pred.length !== truth.length || pred.length !== shape[0] * shape[1] * shape[2]) {
    throw new RangeError(`label maps of ${pred.length} and ${truth.length} voxels for a ${shape.join('x')} grid`);
  }
  const percentile = options.percentile;
  if (percentile !== undefined && !(percentile >= 0 && percentile <= 100)) throw new RangeError(`percentile ${percentile} is outside 0..100`);
  const predBoxes = classBoxes(pred, shape, numClasses);
  const truthBoxes = classBoxes(truth, shape, numClasses);
  const result: number[] = [];
  for (let c = first; c < numClasses; c++) {
    result.push(classHausdorff(pred, truth, shape, c, unionBox(predBoxes[c], truthBoxes[c], 1, shape), options));
  }
  return result;
}

function classHausdorff(pred: ArrayLike<number>, truth: ArrayLike<number>, shape: Triple, c: number, box: Box | undefined, options: HausdorffOptions): number {
  if (!box) return NaN;
  const size = boxSize(box);
  const spacing = options.spacing ?? [1, 1, 1];
  const predSurface = surfaceMask(pred, shape, c, box);
  const truthSurface = surfaceMask(truth, shape, c, box);
  const predEmpty = !predSurface.includes(1);
  const truthEmpty = !truthSurface.includes(1);
  if (predEmpty || truthEmpty) return options.percentile ? NaN : Infinity;
  const directions = [directedSurfaceDistances(predSurface, truthSurface, size, spacing)];
  if (!options.directed) directions.push(directedSurfaceDistances(truthSurface, predSurface, size, spacing));
  return Math.max(...directions.map((d) => (options.percentile ? torchQuantile(d, options.percentile / 100) : maxOf(d))));
}

function maxOf(values: Float32Array): number {
  let max = -Infinity;
  for (const v of values) if (v > max) max = v;
  return max;
}

/** torch.quantile(values, q) with linear interpolation, every step rounded to float32 as on a float32 tensor. */
export function torchQuantile(values: Float32Array, q: number): number {
  const sorted = values.slice().sort();
  const rank = Math.fround(Math.fround(q) * (sorted.length - 1));
  const below = Math.trunc(rank);
  const weight = Math.fround(rank - below);
  const a = sorted[below];
  const b = sorted[Math.ceil(rank)];
  const f = Math.fround;
  return weight < 0.5 ? f(a + f(weight * f(b - a))) : f(b - f(f(b - a) * f(1 - weight)));
}
