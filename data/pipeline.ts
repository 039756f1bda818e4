import type { Volume } from './volume';
import { orientRas } from './transforms/orientation';
import { resampleToSpacing } from './transforms/spacing';
import { IntensityWindow, scaleIntensityRange } from './transforms/scale-intensity';
import { cropForeground } from './transforms/crop-foreground';
import { spatialPad } from './transforms/spatial-pad';
import { resizeTrilinear } from './transforms/resize';

/** Body-region families with their own voxel spacing and HU window, as upstream VoCo preprocesses them. */
export const FAMILIES = ['abdomen', 'chest', 'headneck'] as const;
export type Family = (typeof FAMILIES)[number];

export interface FamilyParams {
  /** Target voxel size in mm along R, A, S. */
  readonly pixdim: readonly [number, number, number];
  /** HU window mapped to [0, 1] with clipping. */
  readonly window: IntensityWindow;
}

export const FAMILY_PARAMS: Readonly<Record<Family, FamilyParams>> = {
  abdomen: { pixdim: [1.5, 1.5, 1.5], window: { aMin: -175, aMax: 250, bMin: 0, bMax: 1 } },
  headneck: { pixdim: [1.5, 1.5, 1.5], window: { aMin: -175, aMax: 250, bMin: 0, bMax: 1 } },
  chest: { pixdim: [1.25, 1.25, 5.0], window: { aMin: -1000, aMax: 500, bMin: 0, bMax: 1 } },
};

/** Every axis is padded to at least this (upstream's roi_x/y/z). */
export const MIN_SIZE: readonly [number, number, number] = [64, 64, 64];
/** The random region VoCo samples from each volume; volumes are padded (or resized) to at least this. */
export const REGION_SIZE: readonly [number, number, number] = [192, 192, 64];

export interface PreprocessOptions {
  /**
   * Upstream's head-and-neck and unlabelled-abdomen variant: after the pad to MIN_SIZE, resize the whole volume to
   * REGION_SIZE (trilinear, align_corners=True).
   */
  readonly resize?: boolean;
  /** Names the volume (its file) in errors about its geometry. */
  readonly source?: string;
}

export type StepName = 'orientation' | 'spacing' | 'scaleIntensity' | 'cropForeground' | 'spatialPad' | 'resize';

/** Runs the deterministic chain, handing each step's output to `onStep` (for inspection and tests). */
export function preprocessSteps(
  volume: Volume,
  family: Family,
  options: PreprocessOptions = {},
  onStep: (step: StepName, output: Volume) => void = () => {},
): Volume {
  const params = FAMILY_PARAMS[family];
  const steps: [StepName, (v: Volume) => Volume][] = [
    ['orientation', orientRas],
    ['spacing', (v) => resampleToSpacing(v, params.pixdim, options.source)],
    ['scaleIntensity', (v) => scaleIntensityRange(v, params.window)],
    ['cropForeground', cropForeground],
    ['spatialPad', (v) => spatialPad(v, MIN_SIZE)],
  ];
  if (options.resize) steps.push(['resize', (v) => resizeTrilinear(v, REGION_SIZE)]);
  let current = volume;
  for (const [name, step] of steps) {
    current = step(current);
    onStep(name, current);
  }
  return current;
}

/**
 * MONAI-equal deterministic preprocessing of a CT volume in HU: RAS orientation, resampling to the family's
 * spacing, HU window to [0, 1], foreground crop, pad to at least 64 per axis, and with `resize` the resize to
 * 192x192x64. The result is what the cache stores; `padToRegion` follows before the random region is drawn.
 */
export function preprocess(volume: Volume, family: Family, options: PreprocessOptions = {}): Volume {
  return preprocessSteps(volume, family, options);
}

/** Upstream's second SpatialPad: at least REGION_SIZE so a full random region always fits. */
export function padToRegion(volume: Volume): Volume {
  return spatialPad(volume, REGION_SIZE);
}

export function isFamily(name: string): name is Family {
  return (FAMILIES as readonly string[]).includes(name);
}
