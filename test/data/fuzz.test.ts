import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { Rng } from '../../common/rng';
import { loadVolume } from '../../data/nifti/read';
import { encodeNifti } from '../../data/nifti/write';
import { BadVolumeError } from '../../data/nifti/errors';
import { preprocess } from '../../data/pipeline';
import { columnNorms } from '../../data/transforms/matrix';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-fuzz-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A small real NIfTI: a bright box in air, with a slightly oblique affine. */
function sampleBytes(): Uint8Array {
  const shape: [number, number, number] = [10, 9, 8];
  const data = new Float32Array(720);
  let i = 0;
  for (let x = 0; x < 10; x++) for (let y = 0; y < 9; y++) for (let z = 0; z < 8; z++) data[i++] = x > 2 && x < 8 && y > 1 && z > 2 ? 40 + x : -1000;
  return encodeNifti({ data, shape, affine: [0.9, 0.1, 0, -5, -0.1, 0.9, 0, 3, 0, 0, 2, 1, 0, 0, 0, 1] }, 'int16');
}

/** Field of view (mm^3) up to which a loaded volume is also preprocessed (larger ones would only make this slow). */
const PREPROCESS_FOV = 1e6;

/** Loads (and preprocesses) a file; the only acceptable failure is a BadVolumeError. */
function outcome(file: string): 'volume' | 'bad' {
  try {
    const { volume } = loadVolume(file);
    expect(volume.data.length).toBe(volume.shape[0] * volume.shape[1] * volume.shape[2]);
    const extent = columnNorms(volume.affine).map((d, i) => d * volume.shape[i]);
    if (extent[0] * extent[1] * extent[2] <= PREPROCESS_FOV) preprocess(volume, 'abdomen', { source: file });
    return 'volume';
  } catch (error) {
    if (error instanceof BadVolumeError) return 'bad';
    throw new Error(`${file}: unexpected ${(error as Error).stack}`);
  }
}

describe('fuzzed NIfTI input gives a Volume or a BadVolumeError, nothing else', () => {
  const original = sampleBytes();

  test('random header byte mutations', () => {
    const rng = new Rng(20240611);
    const counts = { volume: 0, bad: 0 };
    for (let trial = 0; trial < 300; trial++) {
      const bytes = original.slice();
      const edits = rng.int(1, 4);
      for (let e = 0; e < edits; e++) bytes[rng.int(0, 351)] = rng.int(0, 255);
      const file = path.join(tmp, `mutated-${trial}${trial % 2 ? '.nii.gz' : '.nii'}`);
      fs.writeFileSync(file, trial % 2 ? zlib.gzipSync(bytes) : bytes);
      counts[outcome(file)]++;
    }
    expect(counts.volume).toBeGreaterThan(0);
    expect(counts.bad).toBeGreaterThan(0);
  });

  test('targeted header fields set to extreme values', () => {
    const fields: [number, 'i16' | 'f32'][] = [[40, 'i16'], [42, 'i16'], [44, 'i16'], [46, 'i16'], [70, 'i16'], [72, 'i16'], [80, 'f32'], [108, 'f32'], [112, 'f32'], [116, 'f32'], [252, 'i16'], [254, 'i16'], [256, 'f32'], [280, 'f32'], [300, 'f32']];
    const values = [0, -1, 1, 2, 7, 32767, -32768, NaN, Infinity, -Infinity, 1e30, 3.5];
    let n = 0;
    for (const [offset, kind] of fields) {
      for (const value of values) {
        const bytes = original.slice();
        const view = new DataView(bytes.buffer);
        if (kind === 'i16') view.setInt16(offset, Number.isFinite(value) ? Math.trunc(Math.max(-32768, Math.min(32767, value))) : 0, true);
        else view.setFloat32(offset, value, true);
        const file = path.join(tmp, `field-${n++}.nii`);
        fs.writeFileSync(file, bytes);
        outcome(file);
      }
    }
  });

  test('files truncated at many lengths, plain and gzip', () => {
    const gz = zlib.gzipSync(original);
    for (const [bytes, ext] of [[original, '.nii'], [gz, '.nii.gz']] as const) {
      for (let length = 0; length < bytes.length; length += length < 400 ? 7 : 97) {
        const file = path.join(tmp, `cut-${length}${ext}`);
        fs.writeFileSync(file, bytes.subarray(0, length));
        expect(outcome(file)).toBe('bad');
      }
    }
  });

  test('corrupted compressed bytes', () => {
    const gz = zlib.gzipSync(original);
    const rng = new Rng(7);
    for (let trial = 0; trial < 100; trial++) {
      const bytes = gz.slice();
      for (let e = 0; e < 3; e++) bytes[rng.int(0, bytes.length - 1)] ^= 1 << rng.int(0, 7);
      const file = path.join(tmp, `flip-${trial}.nii.gz`);
      fs.writeFileSync(file, bytes);
      outcome(file);
    }
  });
});
