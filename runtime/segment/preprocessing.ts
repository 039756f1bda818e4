/**
 * The preprocessing `voco segment` applies to every scan: as the model's weights were trained, when the model
 * records it (a fine-tuning checkpoint's run config, a segmenter.onnx's metadata), else the family's. `--family`
 * and `--spacing` override; the spacing of a recorded model stays its own under another `--family` (the family
 * then sets the HU window), so that the windows keep the scale the weights learned.
 */
import { Family, FAMILY_PARAMS, FamilyParams } from '../../data/pipeline';
import type { RecordedPreprocessing } from './segmenter-source';

/** What a scan is preprocessed with, and one line for the log saying where each part came from. */
export interface SegmentPreprocessing {
  readonly family: Family;
  readonly params: FamilyParams;
  readonly description: string;
}

export interface PreprocessingRequest {
  readonly family?: Family;
  readonly spacing?: readonly [number, number, number];
}

export const DEFAULT_SEGMENT_FAMILY: Family = 'abdomen';

export function choosePreprocessing(recorded: RecordedPreprocessing | undefined, request: PreprocessingRequest): SegmentPreprocessing {
  const family = request.family ?? recorded?.family ?? DEFAULT_SEGMENT_FAMILY;
  const familyFrom = request.family ? '--family' : recorded ? recorded.from : 'the default; the model records none';
  const spacing = request.spacing ?? recorded?.spacing ?? FAMILY_PARAMS[family].pixdim;
  const spacingFrom = request.spacing ? '--spacing' : recorded ? recorded.from : `the ${family} family's; the model records none`;
  return {
    family,
    params: { ...FAMILY_PARAMS[family], pixdim: [...spacing] as [number, number, number] },
    description: `preprocessing: spacing ${formatSpacing(spacing)} (${spacingFrom}), family ${family} (${familyFrom})`,
  };
}

/** "abdomen family at 3 x 3 x 3 mm" */
export function describePreprocessing(family: string, spacing: readonly number[]): string {
  return `${family} family at ${formatSpacing(spacing)}`;
}

const formatSpacing = (spacing: readonly number[]): string => `${spacing.join(' x ')} mm`;
