import { BadVolumeError } from '../nifti/errors';
import type { NiftiHeader } from '../nifti/header';
import { loadVolume } from '../nifti/read';
import { Family, FAMILY_PARAMS, FamilyParams } from '../pipeline';
import { cropBox, foregroundBox } from '../transforms/crop-foreground';
import type { PreprocessRecord } from '../transforms/invert';
import { orientRas } from '../transforms/orientation';
import { scaleIntensityRange } from '../transforms/scale-intensity';
import { resampleNearestOnto, resampleToSpacing } from '../transforms/spacing';
import type { Volume } from '../volume';
import { checkLabelGrid, loadLabelMap } from './label-map';

/** The steps of the segmentation chain (upstream's validation transforms up to CropForegroundd). */
export type SegmentationStep = 'orientation' | 'spacing' | 'scaleIntensity' | 'cropForeground';

/** The chain's output for an image and, when given, its label map on the same grid. */
export interface SegmentationVolumes<L extends Volume | undefined = Volume | undefined> {
  readonly image: Volume;
  readonly label: L;
  readonly record: PreprocessRecord;
}

export interface SegmentationOptions {
  /** Names the image (its file) in errors. */
  readonly source?: string;
  /** Receives each step's outputs (the label is unchanged by scaleIntensity). */
  readonly onStep?: (step: SegmentationStep, image: Volume, label: Volume | undefined) => void;
  /** The voxel size and HU window instead of the family's (e.g. a coarser spacing for runs on the CPU). */
  readonly params?: FamilyParams;
}

/**
 * MONAI-equal segmentation preprocessing of a CT image in HU and optionally its label map (already checked to be
 * on the image's grid): Orientation RAS for both; Spacing to the family's voxel size, bilinear for the image and
 * nearest (exact ties up, border) for the label onto the image's output grid; the family's HU window on the image;
 * the image's foreground box (> 0 after the window) cropped from both. Also returns the record that inverts it.
 * Every family's spacing and window apply; the pre-training pad and resize do not (upstream's segmentation chain
 * has neither, and a label map cannot be resized trilinearly).
 */
export function preprocessSegmentation<L extends Volume | undefined>(
  image: Volume,
  label: L,
  family: Family,
  options: SegmentationOptions = {},
): SegmentationVolumes<L> {
  const params = options.params ?? FAMILY_PARAMS[family];
  const step = options.onStep ?? (() => {});
  const source = options.source ?? 'volume';
  const oriented = orientRas(image);
  const orientedLabel = label && orientRas(label);
  step('orientation', oriented, orientedLabel);
  const spaced = resampleToSpacing(oriented, params.pixdim, source);
  const spacedLabel = orientedLabel && resampleNearestOnto(orientedLabel, spaced);
  step('spacing', spaced, spacedLabel);
  const scaled = scaleIntensityRange(spaced, params.window);
  step('scaleIntensity', scaled, spacedLabel);
  const box = foregroundBox(scaled);
  if (box.end.every((e) => e === 0)) {
    throw new BadVolumeError(source, `nothing to segment: no voxel is above ${params.window.aMin} HU (the ${family} window) after resampling`);
  }
  const cropped = cropBox(scaled, box);
  const croppedLabel = (spacedLabel && cropBox(spacedLabel, box)) as L;
  step('cropForeground', cropped, croppedLabel);
  const record: PreprocessRecord = {
    original: { shape: image.shape, affine: [...image.affine] },
    oriented: { shape: oriented.shape, affine: [...oriented.affine] },
    spaced: { shape: spaced.shape, affine: [...spaced.affine] },
    crop: box,
  };
  return { image: cropped, label: croppedLabel, record };
}

/** A preprocessed image/label pair read from files, with the image's header (its geometry for written outputs). */
export interface PreprocessedPair extends SegmentationVolumes<Volume> {
  /** The largest class index of the label file. */
  readonly maxLabel: number;
  readonly header: NiftiHeader;
}

/**
 * Reads an image and its label map (LabelGridError naming both when their grids differ) and runs the
 * segmentation chain of `family` on both.
 */
export function preprocessPair(
  imageFile: string,
  labelFile: string,
  family: Family,
  onStep?: SegmentationOptions['onStep'],
  params?: FamilyParams,
): PreprocessedPair {
  const image = loadVolume(imageFile);
  const label = loadLabelMap(labelFile);
  checkLabelGrid(imageFile, image.volume, labelFile, label.volume);
  const out = preprocessSegmentation(image.volume, label.volume, family, { source: imageFile, onStep, params });
  return { ...out, maxLabel: label.maxLabel, header: image.header };
}

/** A preprocessed image to segment, with the record to bring its prediction back and the header to write it with. */
export interface PreprocessedImage {
  readonly volume: Volume;
  readonly record: PreprocessRecord;
  readonly header: NiftiHeader;
}

/**
 * Reads an image and runs the segmentation chain of `family` (at `params`' spacing and window when given) on it, as
 * preprocessPair does for the image.
 */
export function preprocessImageForInference(file: string, family: Family, params?: FamilyParams): PreprocessedImage {
  const { volume, header } = loadVolume(file);
  const out = preprocessSegmentation(volume, undefined, family, { source: file, params });
  return { volume: out.image, record: out.record, header };
}
