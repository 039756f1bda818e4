import { UserError } from '../../common/user-error';
import type { AugmentOptions } from '../voco/augment';
import type { CropSampling } from './centers';

export class SegmentationSampleOptionError extends UserError {}

/**
 * Upstream's fine-tuning crops and augmentations (Large-Scale-Medical Downstream/monai/BTCV): RandCropByPosNegLabeld
 * (`roi`^3 crops, `numSamples` per volume, a crop centred on a foreground voxel with probability pos / (pos + neg),
 * background centres only where the image is above `imageThreshold`; or with sampler 'classes'
 * RandCropByLabelClassesd: class c's voxels above the threshold with probability ratios[c] / sum), then per crop RandFlipd on each spatial axis
 * (`flipProb`), RandRotate90d (`rotateProb`, 1 to 3 quarter turns in the x-y plane), RandScaleIntensityd
 * (`scaleProb`, v * (1 + f), f uniform in [-scaleFactor, scaleFactor)) and RandShiftIntensityd (`shiftProb`,
 * v + o, o uniform in [-shiftOffset, shiftOffset)), the intensity ones on the image only.
 */
export interface SegmentationSampleOptions extends AugmentOptions, CropSampling {
  readonly roi: number;
  readonly numSamples: number;
  readonly imageThreshold: number;
  readonly scaleProb: number;
  readonly scaleFactor: number;
}

export const DEFAULT_SEGMENTATION_SAMPLE: SegmentationSampleOptions = {
  roi: 96,
  numSamples: 4,
  sampler: 'pos-neg',
  pos: 9,
  neg: 1,
  imageThreshold: 0,
  augment: true,
  flipProb: 0.2,
  rotateProb: 0.2,
  scaleProb: 0.1,
  scaleFactor: 0.1,
  shiftProb: 0.5,
  shiftOffset: 0.1,
};

export function segmentationSampleOptions(partial: Partial<SegmentationSampleOptions> = {}): SegmentationSampleOptions {
  const o = { ...DEFAULT_SEGMENTATION_SAMPLE, ...partial };
  const fail = (message: string): never => {
    throw new SegmentationSampleOptionError(`segmentation sampling option ${message}`);
  };
  for (const [name, v, min] of [['roi', o.roi, 2], ['numSamples', o.numSamples, 1]] as const) {
    if (!Number.isInteger(v) || v < min) fail(`${name} must be a whole number >= ${min}, got ${v}`);
  }
  if (!(o.pos >= 0 && o.neg >= 0 && o.pos + o.neg > 0 && Number.isFinite(o.pos + o.neg))) fail(`pos and neg must be >= 0, not both 0, got ${o.pos} and ${o.neg}`);
  if (o.sampler !== 'pos-neg' && o.sampler !== 'classes') fail(`sampler must be pos-neg or classes, got ${o.sampler}`);
  if (o.sampler === 'classes' && !(o.ratios && o.ratios.length >= 2 && o.ratios.every((r) => r >= 0 && Number.isFinite(r)) && o.ratios.some((r) => r > 0))) {
    fail(`ratios of the classes sampler must be one number >= 0 per class (at least 2, not all 0), got ${JSON.stringify(o.ratios)}`);
  }
  if (!Number.isFinite(o.imageThreshold)) fail(`imageThreshold must be a number, got ${o.imageThreshold}`);
  for (const [name, p] of [['flipProb', o.flipProb], ['rotateProb', o.rotateProb], ['scaleProb', o.scaleProb], ['shiftProb', o.shiftProb]] as const) {
    if (!(p >= 0 && p <= 1)) fail(`${name} must be a probability in [0, 1], got ${p}`);
  }
  for (const [name, v] of [['scaleFactor', o.scaleFactor], ['shiftOffset', o.shiftOffset]] as const) {
    if (!(v >= 0 && Number.isFinite(v))) fail(`${name} must be >= 0, got ${v}`);
  }
  return o;
}
