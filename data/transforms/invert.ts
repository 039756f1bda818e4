import type { Volume } from '../volume';
import { Box, uncropBox } from './crop-foreground';
import { undoOrientRas } from './orientation';
import { Grid, resampleNearestOnto } from './spacing';

/**
 * What the segmentation chain (Orientation RAS, Spacing, intensity window, foreground crop) did to a volume's grid,
 * enough to bring an array of the preprocessed grid back onto the file's grid (MONAI keeps the same facts in a
 * MetaTensor's applied_operations). The intensity window changes no geometry and is not recorded.
 */
export interface PreprocessRecord {
  /** The grid of the file as read (before Orientation). */
  readonly original: Grid;
  /** After Orientation to RAS: the source grid of Spacing. */
  readonly oriented: Grid;
  /** The output grid of Spacing. */
  readonly spaced: Grid;
  /** The foreground box in the Spacing grid (end exclusive); the preprocessed volume is this box. */
  readonly crop: Box;
}

/**
 * MONAI Invertd with nearest_interp=True of a label map on the preprocessed (cropped) grid: zero padding back to
 * the Spacing grid, nearest-neighbour resampling (border) onto the oriented grid, then the flips and permutation
 * undone. The result has the original shape and affine. The labels' own affine is not used: the record decides.
 */
export function invertLabels(labels: Pick<Volume, 'data' | 'shape'>, record: PreprocessRecord): Volume {
  const { crop, spaced } = record;
  const boxShape = [0, 1, 2].map((a) => crop.end[a] - crop.start[a]);
  if (!boxShape.every((n, a) => n === labels.shape[a])) {
    throw new Error(`invertLabels: labels of ${labels.shape.join('x')} voxels, but the preprocessed grid is ${boxShape.join('x')}`);
  }
  const padded = uncropBox(labels, crop, spaced);
  return undoOrientRas(resampleNearestOnto(padded, record.oriented), record.original);
}
