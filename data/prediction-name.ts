import * as path from 'path';

/** What `voco segment` appends to an input's name for its label map, and `voco evaluate` looks for. */
export const PREDICTION_SUFFIX = '_seg.nii.gz';

/** An image file's name without the folder and its `.nii` / `.nii.gz` extension. */
export function imageName(file: string): string {
  return path.basename(file).replace(/\.nii(\.gz)?$/i, '');
}

/** The label map's file name for image `file`: `<image name>_seg.nii.gz`. */
export function predictionFileName(file: string): string {
  return `${imageName(file)}${PREDICTION_SUFFIX}`;
}
