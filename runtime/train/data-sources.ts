import * as fs from 'node:fs';
import * as path from 'node:path';
import { preprocessSpec } from '../../data/cache/pipeline-task';
import { DatalistError, loadDecathlonList, loadPretrainConfig } from '../../data/datalist';
import type { LoaderSource } from '../../data/loader/loader';
import { ensurePhantomDataset } from '../../data/phantom/dataset';

/** The seed of the built-in phantom dataset: fixed, so every run on the default data sees the same volumes. */
const PHANTOM_DATASET_SEED = 0;

/**
 * The volumes to pre-train on: a pre-training config (`{"datasets": [...]}`, families and repeat factors), a
 * Decathlon datalist (abdomen preprocessing), or, without `data`, the built-in phantom CTs written once into
 * `<cacheDir>/phantoms`.
 */
export function resolveSources(data: string | undefined, cacheDir: string, phantomCount: number, log: (line: string) => void): LoaderSource[] {
  if (data === undefined) {
    const dir = path.join(cacheDir, 'phantoms');
    log(`no --data given: training on ${phantomCount} built-in phantom CT volumes in ${dir}`);
    return fromDatalist(ensurePhantomDataset(dir, { count: phantomCount, seed: PHANTOM_DATASET_SEED }));
  }
  if (!fs.existsSync(data)) throw new DatalistError(`--data ${data}: no such file`);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(data, 'utf8'));
  } catch (error) {
    throw new DatalistError(`--data ${data}: not valid JSON (${(error as Error).message})`);
  }
  if (typeof json === 'object' && json !== null && 'datasets' in json) {
    const counts = new Map<string, LoaderSource & { repeat: number }>();
    for (const entry of loadPretrainConfig(data)) {
      const key = JSON.stringify([entry.path, entry.family, entry.options]);
      const known = counts.get(key);
      if (known) counts.set(key, { ...known, repeat: known.repeat + 1 });
      else counts.set(key, { path: entry.path, preprocessing: preprocessSpec(entry.family, entry.options), repeat: 1 });
    }
    return [...counts.values()];
  }
  return fromDatalist(data);
}

function fromDatalist(file: string): LoaderSource[] {
  return loadDecathlonList(file).map((p) => ({ path: p, preprocessing: preprocessSpec('abdomen') }));
}
