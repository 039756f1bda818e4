import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadVolume } from '../../data/nifti/read';
import { writeNifti } from '../../data/nifti/write';
import { preprocess } from '../../data/pipeline';
import type { Volume } from '../../data/volume';

const ROOT = path.resolve(__dirname, '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-preprocess-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function voco(...args: string[]) {
  return spawnSync('npx', ['tsx', 'cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
}

/** A small CT-like volume in HU (LPS, 0.8 x 0.8 x 2.5 mm): air around a soft-tissue box with a bone rod. */
function ctVolume(): Volume {
  const shape: [number, number, number] = [40, 36, 20];
  const data = new Float32Array(40 * 36 * 20);
  let i = 0;
  for (let x = 0; x < 40; x++) for (let y = 0; y < 36; y++) for (let z = 0; z < 20; z++) {
    const inside = x > 5 && x < 34 && y > 4 && y < 30;
    data[i++] = !inside ? -1000 : Math.abs(x - 20) < 3 && Math.abs(y - 16) < 3 ? 700 : 40 + ((x + y + z) % 5);
  }
  return { data, shape, affine: [-0.8, 0, 0, 16, 0, -0.8, 0, 14, 0, 0, 2.5, -25, 0, 0, 0, 1] };
}

describe('voco preprocess', () => {
  const input = path.join(tmp, 'ct.nii.gz');
  beforeAll(() => writeNifti(input, ctVolume(), { datatype: 'int16' }));

  test.each([
    ['abdomen', false],
    ['chest', false],
    ['headneck', true],
  ] as const)('--family %s (resize %s) writes the preprocessed volume with its affine', (family, resize) => {
    const out = path.join(tmp, `out-${family}.nii.gz`);
    const result = voco('preprocess', input, '--family', family, '--out', out, ...(resize ? ['--resize'] : []));
    expect(result.stderr).not.toMatch(/voco:/);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain(`wrote ${out}`);
    const written = loadVolume(out).volume;
    const expected = preprocess(loadVolume(input).volume, family, { resize });
    expect(written.shape).toEqual(expected.shape);
    let differing = 0;
    for (let i = 0; i < expected.data.length; i++) if (written.data[i] !== expected.data[i]) differing++;
    expect(differing).toBe(0);
    written.affine.forEach((v, i) => expect(v).toBeCloseTo(expected.affine[i], 4));
    if (resize) expect(written.shape).toEqual([192, 192, 64]);
    else expect(written.shape.every((n) => n >= 64)).toBe(true);
    expect(written.data.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(written.data.some((v) => v === 1)).toBe(true);
  });

  test('a bad input file is one line on stderr, exit code 2, and no output file', () => {
    const bad = path.join(tmp, 'bad.nii');
    fs.writeFileSync(bad, 'not an image');
    const out = path.join(tmp, 'never.nii.gz');
    const result = voco('preprocess', bad, '--family', 'chest', '--out', out);
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split('\n').filter((l) => l.startsWith('voco:'))).toEqual([`voco: ${bad}: not a NIfTI file (header size field is neither 348 nor 540)`]);
    expect(fs.existsSync(out)).toBe(false);
  });

  test('an unknown family is refused', () => {
    const result = voco('preprocess', input, '--family', 'brain', '--out', path.join(tmp, 'x.nii'));
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/family/);
  });
});
