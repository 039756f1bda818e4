import { UserError } from '../../common/user-error';
import { BadVolumeError } from '../nifti/errors';
import type { NiftiHeader } from '../nifti/header';
import { LoadedVolume, loadVolume } from '../nifti/read';
import { NiftiGeometry, writeNifti } from '../nifti/write';
import type { Volume } from '../volume';
import { allClose } from '../transforms/matrix';
import type { Grid } from '../transforms/spacing';

/** The largest class index a label map may hold: what int16 stores (the cache and written label maps use it). */
export const MAX_LABEL = 32767;
/** MONAI's AFFINE_TOL: label and image affines closer than this (mm, per element) are the same grid. */
const GRID_TOLERANCE = 1e-3;

export interface LoadedLabelMap extends LoadedVolume {
  /** The largest class index present (0 for an all-background map). */
  readonly maxLabel: number;
}

/**
 * Reads a label map as MONAI's LoadImaged does (any NIfTI datatype, slope/intercept applied, float32 values) and
 * checks that it holds class indices: integers from 0 to MAX_LABEL. Anything else (a CT given as a label, a
 * probability map) is a BadVolumeError naming the file.
 */
export function loadLabelMap(file: string): LoadedLabelMap {
  const loaded = loadVolume(file);
  const data = loaded.volume.data;
  let maxLabel = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!(Number.isInteger(v) && v >= 0 && v <= MAX_LABEL)) {
      throw new BadVolumeError(file, `not a label map: voxel value ${v} is not a class index (an integer from 0 to ${MAX_LABEL})`);
    }
    if (v > maxLabel) maxLabel = v;
  }
  return { ...loaded, maxLabel };
}

/** A label map that does not lie on its image's voxel grid. */
export class LabelGridError extends UserError {}

/** Whether two grids are the same voxel grid: equal shapes, affines within MONAI's AFFINE_TOL. */
export function sameGrid(a: Grid, b: Grid): boolean {
  return a.shape.every((n, i) => n === b.shape[i]) && allClose(a.affine, b.affine, GRID_TOLERANCE, 0);
}

/** A grid in a few words for messages: its shape and the first three rows of its affine. */
export function describeGrid(g: Grid): string {
  return `${g.shape.join('x')} voxels, affine [${g.affine.slice(0, 12).map((v) => +v.toFixed(4)).join(', ')}]`;
}

/** Throws a one-line LabelGridError naming both files when the label's grid (shape or affine) differs from the image's. */
export function checkLabelGrid(imageFile: string, image: Grid, labelFile: string, label: Grid): void {
  if (sameGrid(image, label)) return;
  const what = image.shape.every((n, i) => n === label.shape[i]) ? 'affine' : 'shape';
  throw new LabelGridError(
    `label ${labelFile} (${describeGrid(label)}) is not on the grid of its image ${imageFile} (${describeGrid(image)}): the ${what} differs`,
  );
}

/**
 * Writes a label map on its scan's grid (e.g. invertLabels' output) as NIfTI with the scan's header geometry
 * (pixdim, qform/sform and their codes, units) copied as stored, so viewers overlay it exactly; uint8 when every
 * class index fits, int16 otherwise. Atomic: the file is complete or absent.
 */
export function writeLabelNifti(file: string, labels: Volume, scan: NiftiGeometry & Pick<NiftiHeader, 'shape'>): void {
  if (!scan.shape.every((n, i) => n === labels.shape[i])) {
    throw new Error(`writeLabelNifti: labels of ${labels.shape.join('x')} voxels for a scan of ${scan.shape.join('x')}`);
  }
  let max = 0;
  for (const v of labels.data) {
    if (!(Number.isInteger(v) && v >= 0 && v <= MAX_LABEL)) throw new Error(`writeLabelNifti: ${v} is not a class index`);
    if (v > max) max = v;
  }
  writeNifti(file, labels, { datatype: max <= 255 ? 'uint8' : 'int16', geometry: scan });
}
