import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../common/user-error';
import { Family, FAMILIES, PreprocessOptions, isFamily } from './pipeline';
import { niftiAffine } from './nifti/affine';
import { loadNiftiHeader } from './nifti/read';
import { checkLabelGrid } from './segmentation/label-map';

/** A dataset list or pre-training config that cannot be used (bad JSON, wrong fields, missing files). */
export class DatalistError extends UserError {}

export type DatalistKey = 'training' | 'validation' | 'test';

/** One volume to pre-train on. */
export interface DatasetEntry {
  readonly path: string;
  readonly family: Family;
  readonly options: PreprocessOptions;
  /** The dataset it came from (its config name). */
  readonly dataset: string;
}

export interface ListOptions {
  /** Which list of a Decathlon JSON; default `training`. */
  readonly key?: DatalistKey;
  /** Folder the listed paths are relative to; default the JSON file's folder (as MONAI). */
  readonly baseDir?: string;
}

/**
 * Image paths of a MONAI Decathlon datalist JSON (`training`/`validation`/`test` arrays of path strings or
 * `{image: path, ...}` objects), resolved against `baseDir` and checked to exist.
 */
export function loadDecathlonList(jsonFile: string, options: ListOptions = {}): string[] {
  const key = options.key ?? 'training';
  const list = readList(jsonFile, readDatalistObject(jsonFile), key);
  if (list === undefined) throw new DatalistError(`${jsonFile}: has no "${key}" list`);
  const baseDir = options.baseDir ?? path.dirname(jsonFile);
  const paths = list.map((item, i) => {
    const image = typeof item === 'string' ? item : (item as { image?: unknown } | null)?.image;
    return listedPath(jsonFile, baseDir, image, `${key}[${i}] has no image path`);
  });
  if (paths.length === 0) throw new DatalistError(`${jsonFile}: the "${key}" list is empty`);
  return paths;
}

/**
 * Whether a Decathlon datalist is a labelled one: every entry of its `training` list names a label map
 * (`{"image": ..., "label": ...}`). A pre-training config, or a list of bare paths, is not.
 */
export function isLabelledDatalist(jsonFile: string): boolean {
  const list = readList(jsonFile, readDatalistObject(jsonFile), 'training');
  return list !== undefined && list.length > 0 && list.every((item) => typeof item === 'object' && item !== null && 'label' in item);
}

/** An image and its label map. */
export interface LabelledCase {
  readonly image: string;
  readonly label: string;
}

/** The labelled lists of a Decathlon datalist, for fine-tuning and evaluation. */
export interface SegmentationDatalist {
  readonly training: LabelledCase[];
  /**
   * null when the JSON has no `validation` list (a Medical Segmentation Decathlon `dataset.json` holds `training`,
   * `test` and `numTraining` only); `missingValidation` then says so in a line to show the user.
   */
  readonly validation: LabelledCase[] | null;
  readonly missingValidation?: string;
  /** The class names of a `labels` table (`{"0": "background", "1": "spleen"}`), by class index. */
  readonly classNames?: ReadonlyMap<number, string>;
}

export interface LabelledListOptions {
  /** Folder the listed paths are relative to; default the JSON file's folder (as MONAI). */
  readonly baseDir?: string;
  /** Refuse a listed file that does not exist (default true; an evaluation reports missing files per case). */
  readonly checkExists?: boolean;
}

export interface SegmentationListOptions extends LabelledListOptions {
  /**
   * Also read each pair's NIfTI headers and refuse a label whose grid (shape or affine) differs from its image's
   * (default true).
   */
  readonly checkGrids?: boolean;
}

/** One list of `{image, label}` pairs of a Decathlon datalist, with the datalist's class names. */
export interface LabelledList {
  readonly key: DatalistKey;
  readonly entries: readonly LabelledCase[];
  /** The `labels` table (`{"0": "background", "1": "spleen"}`) by class index, when the datalist has one. */
  readonly classNames?: ReadonlyMap<number, string>;
}

/**
 * List `key` of `{image, label}` pairs of a Decathlon datalist, paths resolved against the JSON's folder, and its
 * class names. A missing or empty list, an entry without a label or a bad `labels` table is a one-line
 * DatalistError naming the JSON.
 */
export function loadLabelledList(jsonFile: string, key: DatalistKey, options: LabelledListOptions = {}): LabelledList {
  const json = readDatalistObject(jsonFile);
  const entries = labelledEntries(jsonFile, json, key, options);
  if (entries === undefined) throw new DatalistError(`${jsonFile}: has no "${key}" list`);
  if (entries.length === 0) throw new DatalistError(`${jsonFile}: the "${key}" list is empty`);
  const classNames = readClassNames(jsonFile, json.labels);
  return { key, entries, ...(classNames ? { classNames } : {}) };
}

/** The class names of a datalist's `labels` table, undefined when it has none. */
export function readDatalistClassNames(jsonFile: string): ReadonlyMap<number, string> | undefined {
  return readClassNames(jsonFile, readDatalistObject(jsonFile).labels);
}

function labelledEntries(jsonFile: string, json: Record<string, unknown>, key: DatalistKey, options: LabelledListOptions): LabelledCase[] | undefined {
  const list = readList(jsonFile, json, key);
  if (list === undefined) return undefined;
  const baseDir = options.baseDir ?? path.dirname(jsonFile);
  const resolve = (listed: unknown, missing: string) =>
    options.checkExists ?? true ? listedPath(jsonFile, baseDir, listed, missing) : resolvedPath(jsonFile, baseDir, listed, missing);
  return list.map((item, i) => {
    if (typeof item === 'string') throw new DatalistError(`${jsonFile}: ${key}[${i}] (${item}) has no label path: a labelled list needs {"image": ..., "label": ...}`);
    const entry = (item ?? {}) as { image?: unknown; label?: unknown };
    const image = resolve(entry.image, `${key}[${i}] has no image path`);
    const label = resolve(entry.label, `${key}[${i}] (${String(entry.image)}) has no label path`);
    return { image, label };
  });
}

/**
 * The `training` and `validation` lists of `{image, label}` pairs of a Decathlon datalist, paths resolved against
 * the JSON's folder and checked to exist, and each label's grid checked against its image's. Any problem is a
 * one-line DatalistError (or LabelGridError) naming the file.
 */
export function loadSegmentationDatalist(jsonFile: string, options: SegmentationListOptions = {}): SegmentationDatalist {
  const training = loadLabelledList(jsonFile, 'training', options);
  const json = readDatalistObject(jsonFile);
  const validation = labelledEntries(jsonFile, json, 'validation', options) ?? null;
  if (options.checkGrids ?? true) for (const c of [...training.entries, ...(validation ?? [])]) checkPairGrid(c);
  const named = training.classNames ? { classNames: training.classNames } : {};
  if (validation !== null) return { training: [...training.entries], validation, ...named };
  const count = typeof json.numTraining === 'number' ? ` (numTraining ${json.numTraining})` : '';
  const missingValidation = `${jsonFile}: has no "validation" list${count}; it names no validation cases`;
  return { training: [...training.entries], validation, missingValidation, ...named };
}

function checkPairGrid({ image, label }: LabelledCase): void {
  const grid = (file: string) => {
    const header = loadNiftiHeader(file);
    return { shape: header.shape, affine: niftiAffine(header) };
  };
  checkLabelGrid(image, grid(image), label, grid(label));
}

/** A `labels` table `{"<class index>": "<name>"}`; an empty one is none. */
function readClassNames(jsonFile: string, table: unknown): ReadonlyMap<number, string> | undefined {
  if (table === undefined) return undefined;
  const entries = typeof table === 'object' && table !== null && !Array.isArray(table) ? Object.entries(table) : undefined;
  const bad = entries === undefined ? JSON.stringify(table) : entries.find(([index, name]) => !/^\d+$/.test(index) || typeof name !== 'string');
  if (bad !== undefined) {
    const what = Array.isArray(bad) ? `; entry ${JSON.stringify(bad[0])}: ${JSON.stringify(bad[1])} is not one` : '';
    throw new DatalistError(`${jsonFile}: "labels" must map class indices to names, e.g. {"0": "background", "1": "liver"}${what}`);
  }
  return entries!.length ? new Map(entries!.map(([index, name]) => [Number(index), name as string])) : undefined;
}

function readDatalistObject(jsonFile: string): Record<string, unknown> {
  const json = readJson(jsonFile);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new DatalistError(`${jsonFile}: not a Decathlon datalist (expected a JSON object)`);
  }
  return json as Record<string, unknown>;
}

function readList(jsonFile: string, json: Record<string, unknown>, key: DatalistKey): unknown[] | undefined {
  const list = json[key];
  if (list !== undefined && !Array.isArray(list)) throw new DatalistError(`${jsonFile}: "${key}" is not an array`);
  return list;
}

/** A listed path resolved against `baseDir`, checked to exist. */
function listedPath(jsonFile: string, baseDir: string, listed: unknown, missing: string): string {
  const file = resolvedPath(jsonFile, baseDir, listed, missing);
  if (!fs.existsSync(file)) throw new DatalistError(`${jsonFile}: listed file ${file} does not exist`);
  return file;
}

/** A listed path resolved against `baseDir`; `missing` when it is not a path. */
function resolvedPath(jsonFile: string, baseDir: string, listed: unknown, missing: string): string {
  if (typeof listed !== 'string' || listed === '') throw new DatalistError(`${jsonFile}: ${missing}`);
  return path.normalize(path.resolve(baseDir, listed));
}

/** One dataset of a pre-training config. */
interface DatasetConfig {
  name?: string;
  /** A Decathlon JSON (relative to the config file). */
  datalist?: string;
  key?: DatalistKey;
  baseDir?: string;
  /** Instead of `datalist`: a folder (its .nii/.nii.gz files) or a pattern with * and ? in the file name. */
  files?: string;
  family?: string;
  repeat?: number;
  resize?: boolean;
}

/**
 * Reads a pre-training config `{"datasets": [{name, datalist | files, family, repeat?, resize?, key?, baseDir?}]}`
 * (paths relative to the config file) into a flat list; each dataset's files appear `repeat` times (upstream
 * repeats its abdomen and head-and-neck groups 8 times).
 */
export function loadPretrainConfig(configFile: string): DatasetEntry[] {
  const json = readJson(configFile) as { datasets?: unknown };
  if (typeof json !== 'object' || json === null || !Array.isArray(json.datasets)) {
    throw new DatalistError(`${configFile}: expected {"datasets": [...]}`);
  }
  const dir = path.dirname(configFile);
  const entries: DatasetEntry[] = [];
  json.datasets.forEach((raw: unknown, i: number) => {
    const config = (raw ?? {}) as DatasetConfig;
    const name = config.name ?? `datasets[${i}]`;
    const where = `${configFile}: dataset ${name}`;
    if (!config.family || !isFamily(config.family)) {
      throw new DatalistError(`${where}: family must be one of ${FAMILIES.join(', ')}`);
    }
    const repeat = config.repeat ?? 1;
    if (!Number.isInteger(repeat) || repeat < 1) throw new DatalistError(`${where}: repeat must be a positive integer`);
    if ((config.datalist === undefined) === (config.files === undefined)) {
      throw new DatalistError(`${where}: give exactly one of "datalist" and "files"`);
    }
    const baseDir = config.baseDir && path.resolve(dir, config.baseDir);
    const files =
      config.datalist !== undefined
        ? loadDecathlonList(path.resolve(dir, config.datalist), { key: config.key, baseDir })
        : listFiles(path.resolve(dir, config.files as string), where);
    const options: PreprocessOptions = { resize: config.resize ?? false };
    const family = config.family;
    for (let r = 0; r < repeat; r++) for (const file of files) entries.push({ path: file, family, options, dataset: name });
  });
  if (entries.length === 0) throw new DatalistError(`${configFile}: lists no dataset`);
  return entries;
}

const NIFTI_NAME = /\.nii(\.gz)?$/i;

/** The NIfTI files of a folder, or the files matching a `*`/`?` pattern in the last path component, sorted. */
export function listFiles(spec: string, where: string): string[] {
  const isPattern = /[*?]/.test(path.basename(spec));
  const dir = isPattern ? path.dirname(spec) : spec;
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new DatalistError(`${where}: folder ${dir} does not exist`);
  const matcher = isPattern ? globRegExp(path.basename(spec)) : NIFTI_NAME;
  const files = fs
    .readdirSync(dir)
    .filter((name) => matcher.test(name))
    .map((name) => path.join(dir, name))
    .filter((file) => fs.statSync(file).isFile())
    .sort();
  if (files.length === 0) throw new DatalistError(`${where}: no file matches ${spec}`);
  return files;
}

function globRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

export function readJson(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new DatalistError(`${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new DatalistError(`${file}: invalid JSON (${(error as Error).message})`);
  }
}
