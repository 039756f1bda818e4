/**
 * `voco finetune` processes on the smallest model (feature size 12, roi 32, one crop per step, one ORT thread) and
 * small labelled phantoms, for what its data can hold: pairs it cannot use.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadVolume } from '../../data/nifti/read';
import { writeNifti } from '../../data/nifti/write';
import { writePhantomDataset } from '../../data/phantom/dataset';
import { writeLabelNifti } from '../../data/segmentation/label-map';
import { finish, spawnVoco } from '../helpers/cli';

// Each run builds or reads the graphs and takes a few real steps; on a loaded 2-core machine that is minutes.
const RUN_TIMEOUT_MS = 300_000;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-finetune-data-'));
const cacheDir = path.join(work, 'cache');
const phantoms = path.join(work, 'phantoms');
const datalist = writePhantomDataset(phantoms, { count: 3, validation: 1, seed: 5, phantom: { geometry: { inPlaneSize: [40, 48], slices: [16, 20] } } });
const SMALL = ['--preset', 'tiny', '--roi', '32', '--crops', '1', '--threads', '1', '--workers', '1', '--cache-dir', cacheDir, '--sw-batch-size', '2'];
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const finetune = (args: string[]) => finish(spawnVoco(['finetune', ...SMALL, ...args]));

/** The datalist's labelled lists with absolute paths. */
function cases(list: 'training' | 'validation'): { image: string; label: string }[] {
  const json = JSON.parse(fs.readFileSync(datalist, 'utf8')) as Record<string, { image: string; label: string }[]>;
  return json[list].map((c) => ({ image: path.join(phantoms, c.image), label: path.join(phantoms, c.label) }));
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
    const done = await finetune(['--data', list, '--logdir', logdir, '--max-steps', '3', '--checkpoint-every', '3']);
    expect(done.code).toBe(0);
    expect(done.stderr).toMatch(/training without validation/);
    expect(done.stderr.match(new RegExp(escape(`warning: skipping bad file ${air}: ${reason}`), 'g'))).toHaveLength(1);
    expect(done.stderr).toMatch(/finished at step 3: .*; 0 step\(s\) skipped, 1 bad file\(s\) skipped/);
  }, RUN_TIMEOUT_MS);

  test('with --on-bad-file fail, stops with one line naming it', async () => {
    const failing = path.join(work, 'fail');
    fs.cpSync(path.join(logdir, 'artifacts'), path.join(failing, 'artifacts'), { recursive: true });
    const done = await finetune(['--data', list, '--logdir', failing, '--max-steps', '3', '--on-bad-file', 'fail']);
    expect(done.code).toBe(2);
    expect(done.stderr.trim().split('\n').filter((l) => l.startsWith('voco:'))).toEqual([`voco: ${air}: ${reason}`]);
  }, RUN_TIMEOUT_MS);
});
