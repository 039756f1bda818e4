import type { Rng } from '../../common/rng';
import { UserError } from '../../common/user-error';
import { symmetricPadWidths } from '../transforms/spatial-pad';
import type { Volume } from '../volume';

/** A volume/label pair that cannot be sampled (grids differ, nothing to centre a crop on). */
export class SegmentationSampleError extends UserError {}

type Vec3 = [number, number, number];

/**
 * Where fine-tuning crops may be centred, as MONAI finds them, on the volume padded (symmetric zero SpatialPad,
 * `before` voxels in front) to at least the roi along every axis; flat indices in C order over `shape`, the padded
 * grid. `fg` and `bg` are map_binary_to_indices' (label != 0; label == 0 with image > threshold); `classes`, when
 * asked for, map_classes_to_indices' (per class c < numClasses, label == c with image > threshold).
 */
export interface CropCandidates {
  readonly shape: Vec3;
  readonly before: Vec3;
  readonly fg: Uint32Array;
  readonly bg: Uint32Array;
  readonly classes?: readonly Uint32Array[];
}

/**
 * The candidates of `image` and `label` (same grid) for `roi`^3 crops; `numClasses` adds the per-class lists. Upstream's
 * BTCV chain has no pad, so MONAI (allow_smaller False) raises on a volume smaller than the roi; we pad it first,
 * with zeros that are background in the label and image 0 (a candidate only if 0 > threshold), as SpatialPadd
 * before the crop would. Compute once per volume and pass to every sampleSegmentation call (MONAI's
 * FgBgToIndicesd / ClassesToIndicesd).
 */
export function cropCandidates(image: Volume, label: Volume, roi: number, imageThreshold: number, source = 'volume', numClasses?: number): CropCandidates {
  if (label.shape.some((n, a) => n !== image.shape[a])) {
    throw new SegmentationSampleError(`${source}: label grid ${label.shape.join('x')} differs from the image grid ${image.shape.join('x')}`);
  }
  const widths = symmetricPadWidths(image.shape, [roi, roi, roi]);
  const before = widths.map(([b]) => b) as Vec3;
  const shape = image.shape.map((n, a) => n + widths[a][0] + widths[a][1]) as Vec3;
  const [nx, ny, nz] = image.shape;
  const padAboveThreshold = 0 > imageThreshold;
  // Each voxel's label (0 in the pad) and whether its image value is above the threshold.
  const visit = (onVoxel: (flat: number, label: number, above: boolean) => void): void => {
    let flat = 0;
    for (let x = 0; x < shape[0]; x++) {
      const sx = x - before[0];
      for (let y = 0; y < shape[1]; y++) {
        const sy = y - before[1];
        const inPlane = sx >= 0 && sx < nx && sy >= 0 && sy < ny;
        const row = (sx * ny + sy) * nz;
        for (let z = 0; z < shape[2]; z++, flat++) {
          const sz = z - before[2];
          if (!inPlane || sz < 0 || sz >= nz) onVoxel(flat, 0, padAboveThreshold);
          else onVoxel(flat, label.data[row + sz], image.data[row + sz] > imageThreshold);
        }
      }
    }
  };
  // Lists: 0 fg, 1 bg, then one per class; two passes (count, then fill) keep the index arrays exact-sized.
  const listsOf = (l: number, above: boolean): [number, number] => [l !== 0 ? 0 : above ? 1 : -1, above && numClasses !== undefined && l < numClasses ? 2 + l : -1];
  const counts = new Array<number>(2 + (numClasses ?? 0)).fill(0);
  visit((_, l, above) => listsOf(l, above).forEach((k) => k >= 0 && counts[k]++));
  const lists = counts.map((n) => new Uint32Array(n));
  const fill = counts.map(() => 0);
  visit((flat, l, above) => listsOf(l, above).forEach((k) => k >= 0 && (lists[k][fill[k]++] = flat)));
  return { shape, before, fg: lists[0], bg: lists[1], ...(numClasses !== undefined ? { classes: lists.slice(2) } : {}) };
}

/**
 * MONAI correct_crop_centers along one axis of size n >= roi: the centre clamped to [floor(roi / 2),
 * floor(n + 1 - roi / 2) - 1], so that the crop [centre - floor(roi / 2), + roi) lies inside.
 */
export function correctCropCenter(center: number, roi: number, n: number): number {
  const start = Math.floor(roi / 2);
  let end = Math.floor(n + 1 - roi / 2);
  if (start === end) end += 1;
  return Math.min(Math.max(center, start), end - 1);
}

export interface CropCenter {
  /** Centre in the padded grid's voxels. */
  readonly center: Vec3;
  /** Whether it was drawn from the foreground. */
  readonly foreground: boolean;
}

export type CropSampler = 'pos-neg' | 'classes';

/**
 * How crop centres are drawn: MONAI's RandCropByPosNegLabeld (`pos`, `neg`) or RandCropByLabelClassesd (`ratios`,
 * one per class, background first; required by 'classes').
 */
export interface CropSampling {
  readonly sampler: CropSampler;
  readonly pos: number;
  readonly neg: number;
  readonly ratios?: readonly number[];
}

/** The class lists cropCandidates must find for `o` (its numClasses argument). */
export function candidateClasses(o: CropSampling): number | undefined {
  return o.sampler === 'classes' ? o.ratios?.length : undefined;
}

/**
 * MONAI generate_pos_neg_label_crop_centers / generate_label_classes_crop_centers: per crop, a list drawn with
 * probability proportional to its weight (foreground `pos` and background `neg`, or class c `ratios[c]`; an empty
 * list weighs 0), a uniformly drawn voxel of it, its centre corrected so the crop lies inside the padded volume.
 */
export function drawCropCenters(c: CropCandidates, rng: Rng, o: { roi: number; numSamples: number } & CropSampling, source = 'volume'): CropCenter[] {
  const [lists, weights] = o.sampler === 'pos-neg' ? [[c.fg, c.bg], [o.pos, o.neg]] : [classLists(c, o.ratios, source), o.ratios!];
  const used = weights.map((w, i) => (lists[i].length === 0 ? 0 : w));
  const total = used.reduce((a, b) => a + b, 0);
  if (total === 0) {
    const what = o.sampler === 'pos-neg' ? 'the label is empty and no image voxel is above the threshold' : 'no class with a crop ratio above 0 has a voxel above the image threshold';
    throw new SegmentationSampleError(`${source}: no voxel to centre a crop on (${what})`);
  }
  let sum = 0;
  const cumulative = used.map((w) => (sum += w) / total);
  const [, ny, nz] = c.shape;
  return Array.from({ length: o.numSamples }, () => {
    const u = rng.uniform();
    const pick = Math.max(0, cumulative.findIndex((p, i) => u < p && used[i] > 0));
    const list = lists[pick];
    const flat = list[rng.int(0, list.length - 1)];
    const raw = [Math.floor(flat / (ny * nz)), Math.floor(flat / nz) % ny, flat % nz];
    return { center: raw.map((v, a) => correctCropCenter(v, o.roi, c.shape[a])) as Vec3, foreground: o.sampler === 'pos-neg' ? pick === 0 : pick !== 0 };
  });
}

function classLists(c: CropCandidates, ratios: readonly number[] | undefined, source: string): readonly Uint32Array[] {
  if (ratios === undefined || c.classes?.length !== ratios.length) {
    throw new RangeError(`${source}: crop candidates hold ${c.classes?.length ?? 'no'} class lists, the ratios name ${ratios?.length ?? 'no'} classes`);
  }
  return c.classes;
}
