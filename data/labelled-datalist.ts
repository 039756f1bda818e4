import * as path from 'path';
import { DatalistError, DatalistKey, readJson } from './datalist';

/** One image with its label map, paths resolved (not checked to exist: callers report missing files per case). */
export interface LabelledEntry {
  readonly image: string;
  readonly label: string;
}

export interface LabelledList {
  readonly key: DatalistKey;
  readonly entries: readonly LabelledEntry[];
  /** The datalist's `labels` table (`{"0": "background", "1": "liver", ...}`), when it has one. */
  readonly classNames?: ReadonlyMap<number, string>;
}

/**
 * The `{image, label}` entries of list `key` of a Decathlon datalist, resolved against `baseDir` (default the
 * JSON's folder, as MONAI), and its class names.
 */
export function loadLabelledList(jsonFile: string, key: DatalistKey, baseDir = path.dirname(jsonFile)): LabelledList {
  const json = readJson(jsonFile);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new DatalistError(`${jsonFile}: not a Decathlon datalist (expected a JSON object)`);
  }
  const record = json as Record<string, unknown>;
  const list = record[key];
  if (!Array.isArray(list)) throw new DatalistError(`${jsonFile}: has no "${key}" list`);
  if (list.length === 0) throw new DatalistError(`${jsonFile}: the "${key}" list is empty`);
  const entries = list.map((item, i) => {
    const { image, label } = (typeof item === 'string' ? { image: item } : (item ?? {})) as { image?: unknown; label?: unknown };
    if (typeof image !== 'string' || image === '') throw new DatalistError(`${jsonFile}: ${key}[${i}] has no image path`);
    if (typeof label !== 'string' || label === '') throw new DatalistError(`${jsonFile}: ${key}[${i}] (${image}) has no label path`);
    return { image: path.resolve(baseDir, image), label: path.resolve(baseDir, label) };
  });
  const names = record.labels === undefined ? undefined : classNames(record.labels, jsonFile);
  return { key, entries, ...(names && names.size > 0 ? { classNames: names } : {}) };
}

function classNames(table: unknown, jsonFile: string): Map<number, string> {
  if (typeof table !== 'object' || table === null || Array.isArray(table)) throw new DatalistError(`${jsonFile}: "labels" is not an object`);
  const names = new Map<number, string>();
  for (const [index, name] of Object.entries(table)) {
    const c = Number(index);
    if (!Number.isInteger(c) || c < 0 || typeof name !== 'string') {
      throw new DatalistError(`${jsonFile}: "labels" entry ${JSON.stringify(index)}: ${JSON.stringify(name)} is not "<class index>": "<name>"`);
    }
    names.set(c, name);
  }
  return names;
}
