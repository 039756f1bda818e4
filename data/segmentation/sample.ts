import type { Rng } from '../../common/rng';
import { voxelCount, type Volume } from '../volume';
import { drawAugment, extractCrop, type CropAugment, type PaddedSource } from '../voco/augment';
import { candidateClasses, cropCandidates, drawCropCenters, type CropCandidates } from './centers';
import { DEFAULT_SEGMENTATION_SAMPLE, type SegmentationSampleOptions } from './options';

/** The random changes of one crop: VoCo's flips, rotation and shift, and the intensity scale (v * scale + shift). */
export interface SegmentationAugment extends CropAugment {
  /** 1 + factor, in float32 as MONAI multiplies; 1 when not applied. */
  readonly scale: number;
}

/** One volume's fine-tuning batch: `numSamples` crops, each [1, roi, roi, roi], of the image and the label. */
export interface SegmentationSampleArrays {
  readonly image: Float32Array;
  readonly label: Float32Array;
}

export interface SegmentationSample extends SegmentationSampleArrays {
  /** Each crop's first voxel in the volume's voxels (negative where it reaches into the zero padding). */
  readonly starts: readonly (readonly [number, number, number])[];
  /** Whether each crop's centre was drawn from the foreground. */
  readonly foreground: readonly boolean[];
  readonly augments: readonly SegmentationAugment[];
}

/** [numSamples, 1, roi, roi, roi], the shape of both arrays. */
export function segmentationSampleShape(o: SegmentationSampleOptions = DEFAULT_SEGMENTATION_SAMPLE): number[] {
  return [o.numSamples, 1, o.roi, o.roi, o.roi];
}

/**
 * Upstream's fine-tuning sample of one preprocessed image/label pair: RandCropByPosNegLabeld's (or
 * RandCropByLabelClassesd's) `numSamples` centres
 * (on the volume padded to at least the roi, see cropCandidates), then per crop RandFlipd x3, RandRotate90d (the
 * same on image and label), RandScaleIntensityd and RandShiftIntensityd (image only). All randomness comes from
 * `rng`: the centres first, then each crop's augmentation; derive it from (seed, step, slot) alone for batches
 * that do not depend on who builds them. `candidates` (cropCandidates of this pair and roi) saves the scan per call.
 */
export function sampleSegmentation(
  image: Volume,
  label: Volume,
  rng: Rng,
  o: SegmentationSampleOptions = DEFAULT_SEGMENTATION_SAMPLE,
  candidates?: CropCandidates,
  out?: SegmentationSampleArrays,
  source = 'volume',
): SegmentationSample {
  for (const v of [image, label]) {
    if (v.data.length !== voxelCount(v.shape)) throw new RangeError(`volume data holds ${v.data.length} values, its shape ${v.shape.join('x')} needs ${voxelCount(v.shape)}`);
  }
  const { roi, numSamples } = o;
  const cube = roi * roi * roi;
  const arrays = out ?? { image: new Float32Array(numSamples * cube), label: new Float32Array(numSamples * cube) };
  for (const key of ['image', 'label'] as const) {
    if (arrays[key].length !== numSamples * cube) throw new RangeError(`segmentation output '${key}' holds ${arrays[key].length} values, needs ${numSamples * cube}`);
  }
  const c = candidates ?? cropCandidates(image, label, roi, o.imageThreshold, source, candidateClasses(o));
  const centers = drawCropCenters(c, rng, o, source);
  const half = Math.floor(roi / 2);
  const imageSrc: PaddedSource = { data: image.data, shape: image.shape, before: c.before };
  const labelSrc: PaddedSource = { data: label.data, shape: label.shape, before: c.before };
  const augments = centers.map(({ center }, n) => {
    const aug = drawAugment(rng, o);
    const scale = o.augment && rng.uniform() < o.scaleProb ? Math.fround(1 + o.scaleFactor * (2 * rng.uniform() - 1)) : 1;
    const corner = center.map((v) => v - half) as [number, number, number];
    const spatial = { ...aug, shift: 0 };
    extractCrop(imageSrc, corner, roi, spatial, arrays.image, n * cube);
    extractCrop(labelSrc, corner, roi, spatial, arrays.label, n * cube);
    if (scale !== 1 || aug.shift !== 0) {
      const crop = arrays.image.subarray(n * cube, (n + 1) * cube);
      for (let i = 0; i < crop.length; i++) crop[i] = Math.fround(crop[i] * scale) + aug.shift;
    }
    return { ...aug, scale };
  });
  const starts = centers.map(({ center }) => center.map((v, a) => v - half - c.before[a]) as [number, number, number]);
  return { ...arrays, starts, foreground: centers.map((x) => x.foreground), augments };
}
