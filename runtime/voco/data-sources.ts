import * as path from 'node:path';
import type { LoaderSource } from '../../data/loader/loader';
import { loaderSources, readDataEntries } from '../../data/loader/sources';
import { ensurePhantomDataset } from '../../data/phantom/dataset';

/** The seed of the built-in phantom dataset: fixed, so every run on the default data sees the same volumes. */
const PHANTOM_DATASET_SEED = 0;

/**
 * The volumes to pre-train on: `--data` (a pre-training config with families and repeat factors, or a Decathlon
 * datalist preprocessed as abdomen CT), or without it the built-in phantom CTs written once into
 * `<cacheDir>/phantoms`.
 */
export function resolveSources(data: string | undefined, cacheDir: string, phantomCount: number, log: (line: string) => void): LoaderSource[] {
  let file = data;
  if (file === undefined) {
    const dir = path.join(cacheDir, 'phantoms');
    log(`no --data given: training on ${phantomCount} built-in phantom CT volumes in ${dir}`);
    file = ensurePhantomDataset(dir, { count: phantomCount, seed: PHANTOM_DATASET_SEED });
  }
  return loaderSources(readDataEntries(file, 'abdomen'));
}
