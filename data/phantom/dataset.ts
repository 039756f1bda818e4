import * as fs from 'fs';
import * as path from 'path';
import { writeBytesAtomically } from '../../common/atomic-file';
import { Rng } from '../../common/rng';
import { UserError } from '../../common/user-error';
import { writeNifti } from '../nifti/write';
import { generatePhantom, type PhantomOptions } from './generate';
import { ORGANS, OrganName, organLabelTable, selectOrgans } from './organs';

/** The phantom dataset folder cannot be written. */
export class PhantomDatasetError extends UserError {}

export interface PhantomDatasetOptions {
  readonly count: number;
  readonly seed: number;
  /** How many of the volumes go to the `validation` list (the last ones); default 0. */
  readonly validation?: number;
  readonly phantom?: PhantomOptions;
  /** The organs the label maps mark, numbered 1.. in this order; default all of ORGANS. */
  readonly organs?: readonly OrganName[];
}

export const DATASET_JSON = 'dataset.json';

/** Changes whenever the generator makes other volumes for the same options, so an old dataset is rewritten. */
export const PHANTOM_GENERATOR_VERSION = 2;

/** The seed of volume `index` of a dataset: independent streams per index, different datasets per seed. */
export function phantomSeed(datasetSeed: number, index: number): number {
  return new Rng(datasetSeed).fork(index).nextUint32();
}

/**
 * Writes `count` phantom CT volumes as `imagesTr/phantom_NNN.nii.gz` under `dir`, their organ label maps as
 * `labelsTr/phantom_NNN.nii.gz` (uint8, the image's grid and affine), and a Decathlon-style `dataset.json` with
 * the `labels` table and `{image, label}` entries (paths relative to `dir`, as MONAI's load_decathlon_datalist
 * takes them), the last `validation` volumes in its validation list. The JSON is written last, so a folder with a
 * dataset.json is complete. Returns the dataset.json path.
 */
export function writePhantomDataset(dir: string, options: PhantomDatasetOptions): string {
  const { count, seed } = options;
  const validation = options.validation ?? 0;
  if (!Number.isInteger(count) || count < 1) throw new PhantomDatasetError(`phantom count must be a whole number >= 1, got ${count}`);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new PhantomDatasetError(`phantom seed must be a whole number from 0 to 2^32 - 1, got ${seed}`);
  if (!Number.isInteger(validation) || validation < 0 || validation >= count) {
    throw new PhantomDatasetError(`phantom validation count must be a whole number from 0 to ${count - 1}, got ${validation}`);
  }
  for (const sub of ['imagesTr', 'labelsTr']) guard(dir, () => fs.mkdirSync(path.join(dir, sub), { recursive: true }));
  const digits = Math.max(3, String(count - 1).length);
  const entries = Array.from({ length: count }, (_, i) => {
    const phantom = generatePhantom(phantomSeed(seed, i), options.phantom);
    const file = `phantom_${String(i).padStart(digits, '0')}.nii.gz`;
    const [image, label] = [`imagesTr/${file}`, `labelsTr/${file}`];
    const organs = options.organs ? selectOrgans(phantom.organs, options.organs) : phantom.organs;
    const labels = { ...phantom.volume, data: Float32Array.from(organs) };
    guard(dir, () => writeNifti(path.join(dir, image), phantom.volume, { datatype: phantom.storedType }));
    guard(dir, () => writeNifti(path.join(dir, label), labels, { datatype: 'uint8' }));
    return { image: `./${image}`, label: `./${label}` };
  });
  const json = {
    name: 'voco-phantom',
    description: 'Procedural abdominal CT phantoms of adults with organ labels (voco-onnx built-in data)',
    reference: 'voco-onnx data/phantom',
    licence: 'Apache-2.0',
    tensorImageSize: '3D',
    modality: { '0': 'CT' },
    labels: organLabelTable(options.organs ?? ORGANS),
    numTraining: count - validation,
    numTest: 0,
    training: entries.slice(0, count - validation),
    validation: entries.slice(count - validation),
    test: [],
    phantom: phantomRecord(options),
  };
  const file = path.join(dir, DATASET_JSON);
  guard(dir, () => writeBytesAtomically(file, `${JSON.stringify(json, null, 2)}\n`));
  return file;
}

/**
 * The dataset.json of the phantom dataset in `dir`, written first when the folder does not already hold one made
 * with the same options (and all its files). Lets `train` use the built-in data without regenerating it each run.
 */
export function ensurePhantomDataset(dir: string, options: PhantomDatasetOptions): string {
  const file = path.join(dir, DATASET_JSON);
  try {
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    const entries: { image: string; label: string }[] = [...json.training, ...json.validation];
    const listed = entries.flatMap((e) => [e.image, e.label].map((f) => path.join(dir, f)));
    if (JSON.stringify(json.phantom) === JSON.stringify(phantomRecord(options)) && listed.every((f) => fs.existsSync(f))) return file;
  } catch {
    // No usable dataset.json there: write the dataset.
  }
  return writePhantomDataset(dir, options);
}

/** What dataset.json records of how it was made (compared to decide whether a folder can be reused). */
function phantomRecord(options: PhantomDatasetOptions): object {
  const { seed, count } = options;
  const organs = options.organs ? { organs: options.organs } : {};
  return { generator: PHANTOM_GENERATOR_VERSION, seed, count, validation: options.validation ?? 0, options: options.phantom ?? {}, ...organs };
}

function guard(dir: string, action: () => void): void {
  try {
    action();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === undefined) throw error;
    throw new PhantomDatasetError(`cannot write the phantom dataset in ${dir}: ${code} (${(error as Error).message})`);
  }
}
