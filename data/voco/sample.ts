import type { Rng } from '../../common/rng';
import { voxelCount, type Volume } from '../volume';
import { drawAugment, extractCrop, type CropAugment, type PaddedSource } from './augment';
import { DEFAULT_VOCO, regionShape, type VocoSamplingOptions } from './options';
import { positionLabels, randomCropStart } from './position-labels';

/** One volume's share of a batch. */
export interface VocoSampleArrays {
  /** `swBatchSize` random crops, each [1, roi, roi, roi], one after another. */
  readonly images: Float32Array;
  /** The `grid`^2 base crops in label order (i along x outer, j along y inner), each [1, roi, roi, roi]. */
  readonly crops: Float32Array;
  /** [swBatchSize, grid^2] position labels. */
  readonly labels: Float32Array;
}

/** Where everything was taken from, for pictures and checks. */
export interface VocoSampleLayout {
  /** The region's corner in the volume's voxels (negative where the region reaches into the zero padding). */
  readonly regionStart: readonly [number, number, number];
  /** Corner (x, y) of each random crop inside the region; its z range is the region's. */
  readonly cropStarts: readonly (readonly [number, number])[];
  readonly imageAugments: readonly CropAugment[];
  readonly baseAugments: readonly CropAugment[];
}

export interface VocoSample extends VocoSampleArrays {
  readonly layout: VocoSampleLayout;
}

/**
 * Upstream's VoCo sample of one preprocessed volume: the volume is zero-padded (symmetrically, as MONAI's
 * SpatialPadd) to at least the region, a random region is cut (RandSpatialCropd), the random crops' positions
 * and labels are drawn (get_vanilla_transform), and every random crop, then every base crop, is cut and
 * augmented. All randomness comes from `rng`, in that order. `out` receives the arrays when given (views into
 * a batch buffer, say); otherwise they are allocated.
 */
export function sampleVoco(volume: Volume, rng: Rng, options: VocoSamplingOptions = DEFAULT_VOCO, out?: VocoSampleArrays): VocoSample {
  if (volume.data.length !== voxelCount(volume.shape)) {
    throw new RangeError(`volume data holds ${volume.data.length} values, its shape ${volume.shape.join('x')} needs ${voxelCount(volume.shape)}`);
  }
  const { roi, grid, swBatchSize } = options;
  const region = regionShape(options);
  const cube = roi * roi * roi;
  const arrays = out ?? {
    images: new Float32Array(swBatchSize * cube),
    crops: new Float32Array(grid * grid * cube),
    labels: new Float32Array(swBatchSize * grid * grid),
  };
  checkLength('images', arrays.images, swBatchSize * cube);
  checkLength('crops', arrays.crops, grid * grid * cube);
  checkLength('labels', arrays.labels, swBatchSize * grid * grid);

  const before = [0, 1, 2].map((a) => Math.floor(Math.max(region[a] - volume.shape[a], 0) / 2));
  const src: PaddedSource = { data: volume.data, shape: volume.shape, before: before as unknown as [number, number, number] };
  const corner = [0, 1, 2].map((a) => rng.int(0, Math.max(volume.shape[a], region[a]) - region[a]));

  const cropStarts = Array.from({ length: swBatchSize }, () => randomCropStart(rng, roi, grid));
  cropStarts.forEach((s, n) => arrays.labels.set(positionLabels(s, roi, grid), n * grid * grid));

  const imageAugments = cropStarts.map((s, n) => {
    const aug = drawAugment(rng, options);
    extractCrop(src, [corner[0] + s[0], corner[1] + s[1], corner[2]], roi, aug, arrays.images, n * cube);
    return aug;
  });
  const baseAugments: CropAugment[] = [];
  for (let i = 0; i < grid; i++) {
    for (let j = 0; j < grid; j++) {
      const aug = drawAugment(rng, options);
      extractCrop(src, [corner[0] + i * roi, corner[1] + j * roi, corner[2]], roi, aug, arrays.crops, (i * grid + j) * cube);
      baseAugments.push(aug);
    }
  }
  const regionStart = corner.map((c, a) => c - before[a]) as unknown as [number, number, number];
  return { ...arrays, layout: { regionStart, cropStarts, imageAugments, baseAugments } };
}

function checkLength(name: string, array: Float32Array, expected: number): void {
  if (array.length !== expected) throw new RangeError(`VoCo output '${name}' holds ${array.length} values, needs ${expected}`);
}
