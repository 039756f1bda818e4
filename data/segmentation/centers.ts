import type { Rng } from '../../common/rng';
import { UserError } from '../../common/user-error';
import { symmetricPadWidths } from '../transforms/spatial-pad';
import type { Volume } from '../volume';

/** A volume/label pair that cannot be sampled (grids differ, nothing to centre a crop on). */
export class SegmentationSampleError extends UserError {}

type Vec3 = [number, number, number];

/**
 * Where fine-tuning crops may be centred, as MONAI's map_binary_to_indices finds them, on the volume padded
 * (symmetric zero SpatialPad, `before` voxels in front) to at least the roi along every axis: `fg` the flat indices
 * (C order over `shape`, the padded grid) of label != 0, `bg` those of label == 0 with image > threshold.
 */
export interface CropCandidates {
  readonly shape: Vec3;
  readonly before: Vec3;
  readonly fg: Uint32Array;
  readonly bg: Uint32Array;
}

/**
 * The candidates of `image` and `label` (same grid) for `roi`^3 crops. Upstream's BTCV chain has no pad, so MONAI
 * (allow_smaller False) raises on a volume smaller than the roi; we pad it first, with zeros that are background
 * in the label and image 0 (a background centre only if 0 > threshold), as SpatialPadd before the crop would.
 * Compute once per volume and pass to every sampleSegmentation call (it is MONAI's FgBgToIndicesd).
 */
export function cropCandidates(image: Volume, label: Volume, roi: number, imageThreshold: number, source = 'volume'): CropCandidates {
  if (label.shape.some((n, a) => n !== image.shape[a])) {
    throw new SegmentationSampleError(`${source}: label grid ${label.shape.join('x')} differs from the image grid ${image.shape.join('x')}`);
  }
  const widths = symmetricPadWidths(image.shape, [roi, roi, roi]);
  const before = widths.map(([b]) => b) as Vec3;
  const shape = image.shape.map((n, a) => n + widths[a][0] + widths[a][1]) as Vec3;
  const [nx, ny, nz] = image.shape;
  const padIsBackground = 0 > imageThreshold;
  // kind: 1 foreground, 2 background, 0 neither; two passes (count, then fill) keep the index arrays exact-sized.
  const visit = (onVoxel: (flat: number, kind: number) => void): void => {
    let flat = 0;
    for (let x = 0; x < shape[0]; x++) {
      const sx = x - before[0];
      for (let y = 0; y < shape[1]; y++) {
        const sy = y - before[1];
        const inPlane = sx >= 0 && sx < nx && sy >= 0 && sy < ny;
        const row = (sx * ny + sy) * nz;
        for (let z = 0; z < shape[2]; z++, flat++) {
          const sz = z - before[2];
          if (!inPlane || sz < 0 || sz >= nz) {
            if (padIsBackground) onVoxel(flat, 2);
            continue;
          }
          const l = label.data[row + sz];
          if (l !== 0) onVoxel(flat, 1);
          else if (image.data[row + sz] > imageThreshold) onVoxel(flat, 2);
        }
      }
    }
  };
  const counts = [0, 0, 0];
  visit((_, kind) => counts[kind]++);
  const fg = new Uint32Array(counts[1]);
  const bg = new Uint32Array(counts[2]);
  const fill = [0, 0, 0];
  visit((flat, kind) => ((kind === 1 ? fg : bg)[fill[kind]++] = flat));
  return { shape, before, fg, bg };
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

/**
 * MONAI generate_pos_neg_label_crop_centers: per crop, foreground with probability pos / (pos + neg) (always
 * background when there is no foreground voxel, always foreground when there is no background one), a uniformly
 * drawn voxel of that set, its centre corrected so the crop lies inside the padded volume.
 */
export function drawCropCenters(c: CropCandidates, rng: Rng, o: { roi: number; numSamples: number; pos: number; neg: number }, source = 'volume'): CropCenter[] {
  if (c.fg.length === 0 && c.bg.length === 0) {
    throw new SegmentationSampleError(`${source}: no voxel to centre a crop on (the label is empty and no image voxel is above the threshold)`);
  }
  const ratio = c.fg.length === 0 ? 0 : c.bg.length === 0 ? 1 : o.pos / (o.pos + o.neg);
  const [, ny, nz] = c.shape;
  return Array.from({ length: o.numSamples }, () => {
    const foreground = rng.uniform() < ratio;
    const list = foreground ? c.fg : c.bg;
    const flat = list[rng.int(0, list.length - 1)];
    const raw = [Math.floor(flat / (ny * nz)), Math.floor(flat / nz) % ny, flat % nz];
    return { center: raw.map((v, a) => correctCropCenter(v, o.roi, c.shape[a])) as Vec3, foreground };
  });
}
