import { loadVolume } from '../nifti/read';
import { Family, FAMILY_PARAMS, FamilyParams, MIN_SIZE, preprocess, PreprocessOptions, REGION_SIZE } from '../pipeline';
import type { Preprocess } from './load-or-build';

/**
 * Version of what the preprocessing computes: bump it when a change to data/pipeline.ts or data/transforms/
 * changes its output, so that existing cache entries are no longer served.
 */
export const PREPROCESS_VERSION = 1;

/**
 * Everything that decides a preprocessed volume besides the source file. It is part of the cache key, so it lists
 * the family's parameters themselves, not just the family's name.
 */
export interface PreprocessSpec {
  readonly family: Family;
  readonly resize: boolean;
  readonly params: FamilyParams;
  readonly minSize: readonly number[];
  readonly resizeTo: readonly number[] | null;
  readonly version: number;
}

export function preprocessSpec(family: Family, options: PreprocessOptions = {}): PreprocessSpec {
  const resize = options.resize ?? false;
  return {
    family,
    resize,
    params: FAMILY_PARAMS[family],
    minSize: MIN_SIZE,
    resizeTo: resize ? REGION_SIZE : null,
    version: PREPROCESS_VERSION,
  };
}

/** The source read (NIfTI) and run through its family's MONAI-equal chain: what cache entries hold. */
export const preprocessForCache: Preprocess<PreprocessSpec> = async (path, spec) =>
  preprocess(loadVolume(path).volume, spec.family, { resize: spec.resize });
