/** The labelled phantoms of the downstream benchmark: one dataset, a datalist per training-set size. */
import * as fs from 'fs';
import * as path from 'path';
import { writeBytesAtomically } from '../../common/atomic-file';
import { ensurePhantomDataset } from '../../data/phantom/dataset';
import type { OrganName } from '../../data/phantom/organs';
import { LABELLED_PHANTOM } from '../../runtime/finetune/data';

/** The seed of the dataset (`voco phantom`'s default): the same volumes on every machine. */
const PHANTOM_SEED = 0;

interface DatasetEntry {
  readonly image: string;
  readonly label: string;
}

/**
 * Writes (or finds, when `dir` already holds it) `max(sizes) + validation` labelled phantoms marking `organs`, the
 * last `validation` of them for validation, and beside its dataset.json one datalist per size: the first `size`
 * training volumes and the same validation list. Returns the datalists by size.
 */
export function writeSizeDatalists(dir: string, sizes: readonly number[], validation: number, organs: readonly OrganName[]): Map<number, string> {
  const count = Math.max(...sizes) + validation;
  const json = JSON.parse(fs.readFileSync(ensurePhantomDataset(dir, { count, validation, seed: PHANTOM_SEED, organs, phantom: LABELLED_PHANTOM }), 'utf8'));
  const training: DatasetEntry[] = json.training;
  const lists = new Map<number, string>();
  for (const size of sizes) {
    const file = path.join(dir, `train-${size}.json`);
    const list = { name: `${json.name}, first ${size} training volumes`, labels: json.labels, training: training.slice(0, size), validation: json.validation as DatasetEntry[] };
    writeBytesAtomically(file, `${JSON.stringify(list, null, 2)}\n`);
    lists.set(size, file);
  }
  return lists;
}
