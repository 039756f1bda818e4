import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { preprocessSpec } from '../cache/pipeline-task';
import { DatasetEntry, loadDecathlonList, loadPretrainConfig } from '../datalist';
import type { Family, PreprocessOptions } from '../pipeline';
import type { LoaderSource } from './loader';

/**
 * Loader sources from dataset entries (`loadPretrainConfig` lists a file once per repeat): entries with the same
 * file and preprocessing become one source whose `repeat` counts them, in order of first appearance.
 */
export function loaderSources(entries: readonly DatasetEntry[]): LoaderSource[] {
  const byId = new Map<string, { path: string; preprocessing: LoaderSource['preprocessing']; repeat: number }>();
  for (const entry of entries) {
    const preprocessing = preprocessSpec(entry.family, entry.options);
    const id = JSON.stringify([entry.path, preprocessing]);
    const found = byId.get(id);
    if (found) found.repeat++;
    else byId.set(id, { path: entry.path, preprocessing, repeat: 1 });
  }
  return [...byId.values()];
}

/**
 * The entries of `--data FILE`: a pre-training config (`{"datasets": [...]}`, each dataset with its own family)
 * or a single Decathlon datalist, whose files all get `family` and `options`.
 */
export function readDataEntries(file: string, family: Family, options: PreprocessOptions = {}): DatasetEntry[] {
  let isConfig = false;
  try {
    const json = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    isConfig = typeof json === 'object' && json !== null && 'datasets' in json;
  } catch {
    // Unreadable or invalid JSON: loadDecathlonList reports it with the file name.
  }
  if (isConfig) return loadPretrainConfig(file);
  return loadDecathlonList(file).map((path) => ({ path, family, options, dataset: basename(dirname(resolve(file))) }));
}
