/**
 * `voco finetune` processes on the smallest model (feature size 12, roi 32, one crop per step, one ORT thread) and
 * small labelled phantoms, for what its data can hold: pairs it cannot use, pairs `voco cache build` preprocessed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadVolume } from '../../data/nifti/read';
import { writeNifti } from '../../data/nifti/write';
import { writePhantomDataset } from '../../data/phantom/dataset';
import { writeLabelNifti } from '../../data/segmentation/label-map';
import { finish, runVoco, spawnVoco } from '../helpers/cli';

// Each run builds or reads the graphs and takes a few real steps; on a loaded 2-core machine that is minutes.
const RUN_TIMEOUT_MS = 300_000;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-finetune-data-'));
const cacheDir = path.join(work, 'cache');
const phantoms = path.join(work, 'phantoms');
const datalist = writePhantomDataset(phantoms, { count: 3, validation: 1, seed: 5, phantom: { geometry: { inPlaneSize: [40, 48], slices: [16, 20] } } });
const SMALL = ['--preset', 'tiny', '--roi', '32', '--crops', '1', '--threads', '1', '--workers', '1', '--sw-batch-size', '2'];
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const finetune = (args: string[]) => finish(spawnVoco(['finetune', ...SMALL, ...args]));

/** The datalist's labelled lists with absolute paths. */
function cases(list: 'training' | 'validation'): { image: string; label: string }[] {
  const json = JSON.parse(fs.readFileSync(datalist, 'utf8')) as Record<string, { image: string; label: string }[]>;
  return json[list].map((c) => ({ image: path.join(phantoms, c.image), label: path.join(phantoms, c.label) }));
}

/** The cache entries under a --cache-dir, by path, with their modification times. */
function cacheEntries(dir: string): Map<string, number> {
  const walk = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
  return new Map(walk(dir).filter((f) => f.endsWith('.vol') || f.endsWith('.bad.json')).map((f) => [path.relative(dir, f), fs.statSync(f).mtimeMs]));
}

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('voco finetune: a pair with nothing to train on', () => {
  // Air everywhere (-1000 HU: 0 after the abdomen window) on a phantom's grid, with an all-background label map.
  const air = path.join(work, 'air.nii.gz');
  const airLabel = path.join(work, 'air_label.nii.gz');
  const list = path.join(work, 'with-air.json');
  const reason = 'nothing to segment: no voxel is above -175 HU (the abdomen window) after resampling';
  let logdir: string;

  beforeAll(() => {
    const { volume, header } = loadVolume(cases('training')[0].image);
    writeNifti(air, { ...volume, data: new Float32Array(volume.data.length).fill(-1000) }, { datatype: 'int16', geometry: header });
    writeLabelNifti(airLabel, { ...volume, data: new Float32Array(volume.data.length) }, header);
    // Training only: the three entries are each a step's first choice within 3 steps of batch 1.
    fs.writeFileSync(list, JSON.stringify({ labels: JSON.parse(fs.readFileSync(datalist, 'utf8')).labels, training: [...cases('training'), { image: air, label: airLabel }] }));
  });

  test('is skipped with a warning naming it, and the run finishes', async () => {
    logdir = path.join(work, 'skip');
    const done = await finetune(['--data', list, '--cache-dir', cacheDir, '--logdir', logdir, '--max-steps', '3', '--checkpoint-every', '3']);
    expect(done.code).toBe(0);
    expect(done.stderr).toMatch(/training without validation/);
    expect(done.stderr.match(new RegExp(escape(`warning: skipping bad file ${air}: ${reason}`), 'g'))).toHaveLength(1);
    expect(done.stderr).toMatch(/finished at step 3: .*; 0 step\(s\) skipped, 1 bad file\(s\) skipped/);
  }, RUN_TIMEOUT_MS);

  test('with --on-bad-file fail, stops with one line naming it', async () => {
    const failing = path.join(work, 'fail');
    fs.cpSync(path.join(logdir, 'artifacts'), path.join(failing, 'artifacts'), { recursive: true });
    const done = await finetune(['--data', list, '--cache-dir', cacheDir, '--logdir', failing, '--max-steps', '3', '--on-bad-file', 'fail']);
    expect(done.code).toBe(2);
    expect(done.stderr.trim().split('\n').filter((l) => l.startsWith('voco:'))).toEqual([`voco: ${air}: ${reason}`]);
  }, RUN_TIMEOUT_MS);
});

describe('voco cache build of a labelled datalist', () => {
  const prebuilt = path.join(work, 'prebuilt');
  const build = (...args: string[]) => runVoco(['cache', 'build', '--data', datalist, '--cache-dir', prebuilt, ...args]);

  test('preprocesses every pair (training and validation) as voco finetune at that --spacing reads it: the run then preprocesses nothing', async () => {
    const built = build('--spacing', '3', '3', '3');
    expect(built.status).toBe(0);
    expect(built.stdout).toMatch(/^cache build for voco finetune at 3 x 3 x 3 mm: 3 image\/label pairs in [\d.]+ s: 3 built, 0 already cached, 0 bad\n$/);
    const entries = cacheEntries(prebuilt);
    expect([...entries.keys()].every((f) => f.startsWith(`volumes${path.sep}`) && f.endsWith('.vol'))).toBe(true);
    expect(entries.size).toBe(3);

    const logdir = path.join(work, 'from-prebuilt');
    const done = await finetune(['--data', datalist, '--cache-dir', prebuilt, '--spacing', '3', '3', '3', '--logdir', logdir, '--max-steps', '2', '--val-every', '2']);
    expect(done.code).toBe(0);
    // Trained on both training pairs and validated on the third, every one found in the cache: no entry was added
    // or written again.
    expect(done.stderr).toMatch(/finished at step 2: .*; 0 step\(s\) skipped, 0 bad file\(s\) skipped/);
    expect(fs.readFileSync(path.join(logdir, 'metrics.jsonl'), 'utf8')).toMatch(/"val_dice_mean"/);
    expect(cacheEntries(prebuilt)).toEqual(entries);

    // Another spacing is another chain, so other entries; the first ones are all still there.
    expect(build().stdout).toMatch(/^cache build for voco finetune at 1\.5 x 1\.5 x 1\.5 mm: 3 image\/label pairs in [\d.]+ s: 3 built, 0 already cached/);
    expect(build('--spacing', '3', '3', '3').stdout).toMatch(/3 image\/label pairs in [\d.]+ s: 0 built, 3 already cached, 0 bad/);
    expect(cacheEntries(prebuilt).size).toBe(6);
  }, RUN_TIMEOUT_MS);

  test('--for train builds the training images as voco train reads them, in the same folder', async () => {
    const dir = path.join(work, 'prebuilt-train');
    const built = runVoco(['cache', 'build', '--data', datalist, '--cache-dir', dir, '--for', 'train']);
    expect(built.status).toBe(0);
    expect(built.stdout).toMatch(/^cache build for voco train: 2 source files in [\d.]+ s: 2 built, 0 already cached, 0 bad\n$/);
    const entries = cacheEntries(dir);
    expect(entries.size).toBe(2);
    const train = ['train', '--data', datalist, '--cache-dir', dir, '--logdir', path.join(work, 'train'), '--preset', 'tiny', '--roi', '32', '--sw-batch-size', '1'];
    const done = await finish(spawnVoco([...train, '--threads', '1', '--held-out-batches', '0', '--max-steps', '2']));
    expect(done.code).toBe(0);
    expect(done.stderr).toMatch(/finished at step 2/);
    expect(cacheEntries(dir)).toEqual(entries);
  }, RUN_TIMEOUT_MS);
});
