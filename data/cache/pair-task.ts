import { resolve } from 'node:path';
import { Family, FAMILY_PARAMS, FamilyParams } from '../pipeline';
import { preprocessPair } from '../segmentation/preprocess';
import { CachedPair, PAIR_ENTRY } from './format';
import { CacheSource, loadOrBuildEntry, LoadOrBuildOptions, Outcome, Preprocess } from './load-or-build';
import type { VolumeCache } from './store';

/**
 * Version of what the segmentation chain computes (data/segmentation/, data/transforms/): bump it when a change
 * alters its output, so that existing pair entries are no longer served.
 */
export const SEGMENTATION_PREPROCESS_VERSION = 1;

/** Everything that decides a preprocessed image/label pair besides the two files' contents (part of the key). */
export interface PairSpec {
  readonly task: 'segmentation';
  /** The label map's absolute path (its size and modification time join the key as a companion). */
  readonly label: string;
  readonly family: Family;
  readonly params: FamilyParams;
  readonly version: number;
}

/**
 * The cache source of an image and its label map under `family`'s segmentation chain (with `params`, e.g. another
 * spacing, instead of the family's when given).
 */
export function pairSource(image: string, label: string, family: Family, params: FamilyParams = FAMILY_PARAMS[family]): CacheSource<PairSpec> {
  const spec: PairSpec = {
    task: 'segmentation',
    label: resolve(label),
    family,
    params,
    version: SEGMENTATION_PREPROCESS_VERSION,
  };
  return { path: image, preprocessing: spec, companions: [label] };
}

/** Both files read and run through the segmentation chain: what pair entries hold. */
export const preprocessPairForCache: Preprocess<PairSpec, CachedPair> = async (path, spec) => {
  const { image, label, record } = preprocessPair(path, spec.label, spec.family, undefined, spec.params);
  return { image, label, record };
};

/**
 * The preprocessed pair (image as the cache's dtype stores it, label exact, inversion record) from the cache, or
 * preprocessed and stored. A bad image or label file (unreadable, not a label map, another grid) is recorded as bad.
 */
export function loadOrBuildPair(
  cache: VolumeCache,
  source: CacheSource<PairSpec>,
  options: LoadOrBuildOptions = {},
): Promise<Outcome<CachedPair>> {
  return loadOrBuildEntry(cache, source, preprocessPairForCache, PAIR_ENTRY, options);
}
