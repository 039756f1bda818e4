/**
 * `voco evaluate` end to end on NIfTI label maps written here: Dice and HD95 per case and class in the CSV and the
 * table, class names from the datalist, a missing prediction counted, a bad label file reported, mismatched grids
 * a one-line error naming both files.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { hausdorffDistances } from '../../data/metrics/hausdorff';
import { writeNifti } from '../../data/nifti/write';
import type { Volume } from '../../data/volume';

const ROOT = path.resolve(__dirname, '../..');

function voco(...args: string[]) {
  return spawnSync(process.execPath, ['--require', require.resolve('tsx/cjs'), 'cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
}

const SHAPE = [10, 8, 6] as const;
/** 2 x 1 x 1 mm voxels, origin (-5, 3, 7). */
const AFFINE = [2, 0, 0, -5, 0, 1, 0, 3, 0, 0, 1, 7, 0, 0, 0, 1];

/** A label map with class `c` filling each [x0, x1) x [y0, y1) x [z0, z1) box. */
function labelMap(boxes: [number, number[], number[], number[]][], affine = AFFINE): Volume {
  const [nx, ny, nz] = SHAPE;
  const data = new Float32Array(nx * ny * nz);
  for (const [c, [x0, x1], [y0, y1], [z0, z1]] of boxes) {
    for (let x = x0; x < x1; x++) for (let y = y0; y < y1; y++) for (let z = z0; z < z1; z++) data[(x * ny + y) * nz + z] = c;
  }
  return { data, shape: SHAPE, affine };
}

/** Parses our CSV (no quoted fields in these tests). */
const parseCsv = (text: string) => text.trim().split('\n').map((line) => line.split(','));

describe('voco evaluate', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-evaluate-'));
    for (const sub of ['images', 'labels', 'pred']) fs.mkdirSync(path.join(dir, sub));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (file: string, volume: Volume) => writeNifti(path.join(dir, file), volume, { datatype: 'int16' });
  const datalist = (name: string, cases: string[], labels?: Record<string, string>) => {
    const file = path.join(dir, name);
    const entries = cases.map((c) => ({ image: `images/${c}.nii.gz`, label: `labels/${c}.nii.gz` }));
    fs.writeFileSync(file, JSON.stringify({ ...(labels ? { labels } : {}), training: [], validation: entries }));
    return file;
  };

  it('scores every case, counts a missing prediction and a bad file, and writes the CSV', () => {
    // a: exact; b: the liver cube shifted by one voxel along x and the kidney missed; c: no prediction; d: bad truth
    const truthA = labelMap([[1, [1, 5], [1, 5], [1, 5]], [2, [6, 9], [2, 6], [1, 4]]]);
    const truthB = labelMap([[1, [2, 6], [2, 6], [1, 5]], [3, [6, 8], [0, 2], [0, 2]]]);
    const predB = labelMap([[1, [3, 7], [2, 6], [1, 5]]]);
    write('labels/a.nii.gz', truthA);
    write('pred/a_seg.nii.gz', truthA);
    write('labels/b.nii.gz', truthB);
    write('pred/b_seg.nii.gz', predB);
    write('labels/c.nii.gz', truthA);
    fs.writeFileSync(path.join(dir, 'labels/d.nii.gz'), 'not a NIfTI file');
    write('pred/d_seg.nii.gz', truthA);
    const list = datalist('data.json', ['a', 'b', 'c', 'd'], { '0': 'background', '1': 'liver', '2': 'spleen', '3': 'kidney' });
    const csv = path.join(dir, 'results.csv');

    const run = voco('evaluate', '--pred', path.join(dir, 'pred'), '--truth', list, '--out', csv);
    expect(run.status).toBe(0);
    expect(run.stderr).toContain('evaluating the "validation" list');
    expect(run.stdout).toMatch(/^a\s+1\.0000\s+1\.0000\s+nan\s+1\.0000$/m);
    expect(run.stdout).toContain('missing prediction: c:');
    expect(run.stdout).toMatch(/failed: d: .*labels\/d\.nii\.gz/);

    const rows = parseCsv(fs.readFileSync(csv, 'utf8'));
    expect(rows[0]).toEqual(['case', 'status', 'dice_liver', 'dice_spleen', 'dice_kidney', 'dice_mean', 'hd95_mm_liver', 'hd95_mm_spleen', 'hd95_mm_kidney', 'prediction', 'truth', 'problem']);
    const byCase = Object.fromEntries(rows.slice(1).map((r) => [r[0], r]));
    expect(byCase.a.slice(1, 9)).toEqual(['ok', '1.000000', '1.000000', 'nan', '1.000000', '0.0000', '0.0000', 'nan']);
    // b: liver 4x4x4 cubes overlapping in 3x4x4 -> 2 * 48 / 128; spleen absent from both; kidney missed -> 0
    expect(byCase.b.slice(1, 6)).toEqual(['ok', '0.750000', 'nan', '0.000000', '0.375000']);
    const hdB = hausdorffDistances(predB.data, truthB.data, SHAPE, 4, { spacing: [2, 1, 1], percentile: 95 });
    expect(Number(byCase.b[6])).toBeCloseTo(hdB[0], 4);
    expect(hdB[0]).toBeGreaterThan(0);
    expect(hdB[0]).toBeLessThanOrEqual(2);
    expect(byCase.b.slice(7, 9)).toEqual(['nan', 'nan']);
    expect(byCase.c.slice(1, 3)).toEqual(['missing prediction', '']);
    expect(byCase.d[1]).toBe('failed');
    expect(byCase.d[11]).toContain('d.nii.gz');
    // summary: liver over a and b, spleen over a, kidney over b; the mean over cases of their own means
    expect(byCase['summary: mean'].slice(1, 6)).toEqual(['2 evaluated', '0.875000', '1.000000', '0.000000', '0.687500']);
    expect(byCase['summary: cases'].slice(2, 9)).toEqual(['2', '1', '1', '2', '2', '1', '0']);
    expect(run.stdout).toMatch(/^kidney\s+1\s+0\.0000\s+nan\s+0\s+1\s+0$/m);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('without a labels table names classes by number', () => {
    const truth = labelMap([[2, [1, 4], [1, 4], [1, 4]]]);
    write('labels/e.nii.gz', truth);
    write('pred/e_seg.nii.gz', truth);
    const run = voco('evaluate', '--pred', path.join(dir, 'pred'), '--truth', datalist('plain.json', ['e']));
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^case\s+class 1\s+class 2\s+mean$/m);
    expect(run.stdout).toMatch(/^e\s+nan\s+1\.0000\s+1\.0000$/m);
  });

  it('mismatched grids are a one-line error naming both files; so is a missing prediction folder', () => {
    const truth = labelMap([[1, [1, 4], [1, 4], [1, 4]]]);
    write('labels/f.nii.gz', truth);
    write('pred/f_seg.nii.gz', labelMap([[1, [1, 4], [1, 4], [1, 4]]], [2, 0, 0, -3, 0, 1, 0, 3, 0, 0, 1, 7, 0, 0, 0, 1]));
    const list = datalist('shifted.json', ['f']);
    const run = voco('evaluate', '--pred', path.join(dir, 'pred'), '--truth', list, '--out', path.join(dir, 'never.csv'));
    expect(run.status).toBe(2);
    const lines = run.stderr.trim().split('\n').filter((l) => l.startsWith('voco:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(path.join(dir, 'pred/f_seg.nii.gz'));
    expect(lines[0]).toContain(path.join(dir, 'labels/f.nii.gz'));
    expect(lines[0]).toContain('different affines');
    expect(fs.existsSync(path.join(dir, 'never.csv'))).toBe(false);

    const none = voco('evaluate', '--pred', path.join(dir, 'nowhere'), '--truth', list);
    expect(none.status).toBe(2);
    expect(none.stderr.trim()).toBe(`voco: --pred: folder ${path.join(dir, 'nowhere')} does not exist`);
  });
});
