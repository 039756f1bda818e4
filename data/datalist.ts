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

export interface SegmentationListOptions {
  /** Folder the listed paths are relative to; default the JSON file's folder (as MONAI). */
  readonly baseDir?: string;
  /**
   * Also read each pair's NIfTI headers and refuse a label whose grid (shape or affine) differs from its image's
   * (default true).
   */
  readonly checkGrids?: boolean;
}

/**
 * The `training` and `validation` lists of `{image, label}` pairs of a Decathlon datalist, paths resolved against
 * the JSON's folder and checked to exist, and each label's grid checked against its image's. Any problem is a
 * one-line DatalistError (or LabelGridError) naming the file.
 */
export function loadSegmentationDatalist(jsonFile: string, options: SegmentationListOptions = {}): SegmentationDatalist {
  const json = readDatalistObject(jsonFile);
  const baseDir = options.baseDir ?? path.dirname(jsonFile);
  const pairs = (key: DatalistKey): LabelledCase[] | null => {
    const list = readList(jsonFile, json, key);
    if (list === undefined) return null;
    return list.map((item, i) => {
      if (typeof item === 'string') throw new DatalistError(`${jsonFile}: ${key}[${i}] is a bare path; a labelled list needs {"image": ..., "label": ...}`);
      const entry = (item ?? {}) as { image?: unknown; label?: unknown };
      const image = listedPath(jsonFile, baseDir, entry.image, `${key}[${i}] has no image path`);
      const label = listedPath(jsonFile, baseDir, entry.label, `${key}[${i}] has no label path`);
      return { image, label };
    });
  };
  const training = pairs('training');
  if (training === null) throw new DatalistError(`${jsonFile}: has no "training" list`);
  if (training.length === 0) throw new DatalistError(`${jsonFile}: the "training" list is empty`);
  const validation = pairs('validation');
  if (options.checkGrids ?? true) for (const c of [...training, ...(validation ?? [])]) checkPairGrid(c);
  const classNames = readClassNames(jsonFile, json.labels);
  if (validation !== null) return { training, validation, classNames };
  const count = typeof json.numTraining === 'number' ? ` (numTraining ${json.numTraining})` : '';
  const missingValidation = `${jsonFile}: has no "validation" list${count}; it names no validation cases`;
  return { training, validation, missingValidation, classNames };
}

function checkPairGrid({ image, label }: LabelledCase): void {
  const grid = (file: string) => {
    const header = loadNiftiHeader(file);
    return { shape: header.shape, affine: niftiAffine(header) };
  };
  checkLabelGrid(image, grid(image), label, grid(label));
}

function readClassNames(jsonFile: string, table: unknown): ReadonlyMap<number, string> | undefined {
  if (table === undefined) return undefined;
  const entries = typeof table === 'object' && table !== null && !Array.isArray(table) ? Object.entries(table) : [];
  const names = new Map<number, string>();
  for (const [index, name] of entries) {
    if (!/^\d+$/.test(index) || typeof name !== 'string') break;
    names.set(Number(index), name);
  }
  if (names.size === 0 || names.size !== entries.length) {
    throw new DatalistError(`${jsonFile}: "labels" must map class indices to names, e.g. {"0": "background", "1": "liver"}`);
  }
  return names;
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
  if (typeof listed !== 'string' || listed === '') throw new DatalistError(`${jsonFile}: ${missing}`);
  const file = path.normalize(path.resolve(baseDir, listed));
  if (!fs.existsSync(file)) throw new DatalistError(`${jsonFile}: listed file ${file} does not exist`);
  return file;
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
function listFiles(spec: string, where: string): string[] {
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
