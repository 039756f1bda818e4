import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { loadVolume } from '../../data/nifti/read';
import { encodeNifti, writeNifti } from '../../data/nifti/write';
import { BadVolumeError } from '../../data/nifti/errors';
import type { Volume } from '../../data/volume';
import { roundHalfEven } from '../../data/transforms/matrix';
import { REFERENCE } from '../helpers/reference';

/** MONAI 1.3.2 reference outputs. */
const PREPROCESS = path.join(REFERENCE, 'preprocess');
const referenceCases = fs.existsSync(PREPROCESS) ? fs.readdirSync(PREPROCESS).filter((d) => d.startsWith('v')) : [];
const describeWithReference = referenceCases.length > 0 ? describe : describe.skip;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-nifti-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function readF32(file: string): Float32Array {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function expectAffine(actual: readonly number[], expected: readonly number[], tol = 1e-5): void {
  expect(actual).toHaveLength(16);
  actual.forEach((v, i) => expect(Math.abs(v - expected[i])).toBeLessThanOrEqual(tol));
}

/** A small volume with distinct values and an oblique, LPS-like affine. */
function sampleVolume(shape: [number, number, number] = [5, 4, 3]): Volume {
  const n = shape[0] * shape[1] * shape[2];
  const data = Float32Array.from({ length: n }, (_, i) => ((i * 37) % 101) - 50 + 0.25);
  const c = Math.cos(0.3), s = Math.sin(0.3);
  const affine = [-0.8 * c, 0.7 * s, 0, 20.5, -0.8 * s, -0.7 * c, 0, 15.25, 0, 0, 2.5, -40, 0, 0, 0, 1];
  return { data, shape, affine };
}

function save(name: string, bytes: Uint8Array): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, bytes);
  return file;
}

/** A NIfTI-1 file of `volume` re-typed: header patched to `code`/`bitpix`, voxels (NIfTI order) from `raw`. */
function retyped(volume: Volume, code: number, bitpix: number, raw: ArrayBufferView): Uint8Array {
  const header = encodeNifti(volume, 'float32').slice(0, 352);
  const view = new DataView(header.buffer);
  view.setInt16(70, code, true);
  view.setInt16(72, bitpix, true);
  const out = new Uint8Array(352 + raw.byteLength);
  out.set(header);
  out.set(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength), 352);
  return out;
}

function patch(bytes: Uint8Array, edit: (view: DataView) => void): Uint8Array {
  const copy = bytes.slice();
  edit(new DataView(copy.buffer));
  return copy;
}

/** Voxel (x, y, z) of a NIfTI-order (x fastest) array of the given shape, as a C-order Volume index. */
function fortranToC(shape: readonly number[], values: ArrayLike<number>): Float32Array {
  const [nx, ny, nz] = shape;
  const out = new Float32Array(nx * ny * nz);
  for (let x = 0; x < nx; x++) for (let y = 0; y < ny; y++) for (let z = 0; z < nz; z++) out[(x * ny + y) * nz + z] = values[x + nx * (y + ny * z)];
  return out;
}

describeWithReference('loadVolume on the MONAI reference inputs', () => {
  test.each(referenceCases.length > 0 ? referenceCases : ['none'])('%s: voxels, affine and header facts equal nibabel', (name) => {
    const json = JSON.parse(fs.readFileSync(path.join(PREPROCESS, name, 'case.json'), 'utf8'));
    const { volume, header } = loadVolume(path.join(PREPROCESS, name, json.input.file));
    const expected = readF32(path.join(PREPROCESS, name, '00_LoadImaged.bin'));
    expect(volume.shape).toEqual(json.input.header.dim.slice(1, 4));
    expect(volume.data).toEqual(expected);
    expectAffine(volume.affine, json.input.header.affine.flat());
    expect(header.datatypeName).toBe(json.input.header.dtype);
    expect(header.voxOffset).toBe(json.input.header.vox_offset);
  });
});

describe('writeNifti / loadVolume round trip', () => {
  test('float32 .nii keeps values exactly and the affine within float32 precision', () => {
    const volume = sampleVolume();
    const file = path.join(tmp, 'rt.nii');
    writeNifti(file, volume);
    const { volume: back, header } = loadVolume(file);
    expect(back.shape).toEqual(volume.shape);
    expect(back.data).toEqual(volume.data);
    expectAffine(back.affine, volume.affine);
    expect(header.sformCode).toBe(1);
    expect(header.qformCode).toBe(1);
    expect(fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  test('int16 .nii.gz rounds values and is gzip-compressed', () => {
    const volume = sampleVolume([6, 5, 4]);
    const file = path.join(tmp, 'rt16.nii.gz');
    writeNifti(file, volume, { datatype: 'int16' });
    expect([...fs.readFileSync(file).subarray(0, 2)]).toEqual([0x1f, 0x8b]);
    const { volume: back, header } = loadVolume(file);
    expect(header.datatypeName).toBe('int16');
    expect(back.data).toEqual(volume.data.map((v) => roundHalfEven(v)));
  });

  test('the qform alone (sform_code 0) gives the same affine, including a left-handed one (qfac -1)', () => {
    for (const affine of [sampleVolume().affine, [0.8, 0, 0, -10, 0, 0.9, 0, 5, 0, 0, 3, 7, 0, 0, 0, 1]]) {
      const volume = { ...sampleVolume(), affine };
      const file = save('qform.nii', patch(encodeNifti(volume, 'float32'), (v) => v.setInt16(254, 0, true)));
      const loaded = loadVolume(file);
      expect(loaded.header.sformCode).toBe(0);
      expectAffine(loaded.volume.affine, affine);
    }
  });

  test('an sform_code outside the NIfTI list is ignored (nibabel resets it), so the qform is used', () => {
    const volume = sampleVolume();
    const bytes = patch(encodeNifti(volume, 'float32'), (v) => (v.setInt16(254, 9, true), v.setFloat32(280, 123, true)));
    expectAffine(loadVolume(save('sform9.nii', bytes)).volume.affine, volume.affine);
  });

  test('without qform and sform the affine is nibabel fallback from the voxel sizes', () => {
    const volume: Volume = { data: new Float32Array(4 * 5 * 6), shape: [4, 5, 6], affine: [2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 4, 0, 0, 0, 0, 1] };
    const file = save('noform.nii', patch(encodeNifti(volume, 'float32'), (v) => (v.setInt16(252, 0, true), v.setInt16(254, 0, true))));
    expect(loadVolume(file).volume.affine).toEqual([-2, 0, 0, 3, 0, 3, 0, -6, 0, 0, 4, -10, 0, 0, 0, 1]);
  });
});

describe('datatypes, scaling, byte order and NIfTI-2', () => {
  const shape: [number, number, number] = [3, 4, 2];
  const base: Volume = { data: new Float32Array(24), shape, affine: [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1] };
  const pattern = Array.from({ length: 24 }, (_, i) => i * 5 - 40);
  const cases: [string, number, number, ArrayBufferView, number[]][] = [
    ['uint8', 2, 8, Uint8Array.from(pattern, (v) => v + 40), pattern.map((v) => v + 40)],
    ['int8', 256, 8, Int8Array.from(pattern), pattern],
    ['int16', 4, 16, Int16Array.from(pattern, (v) => v * 100), pattern.map((v) => v * 100)],
    ['uint16', 512, 16, Uint16Array.from(pattern, (v) => v + 60000), pattern.map((v) => v + 60000)],
    ['int32', 8, 32, Int32Array.from(pattern, (v) => v * 1000), pattern.map((v) => v * 1000)],
    ['uint32', 768, 32, Uint32Array.from(pattern, (v) => v + 3e9), pattern.map((v) => Math.fround(v + 3e9))],
    ['float32', 16, 32, Float32Array.from(pattern, (v) => v / 8), pattern.map((v) => v / 8)],
    ['float64', 64, 64, Float64Array.from(pattern, (v) => v / 3), pattern.map((v) => Math.fround(v / 3))],
    ['int64', 1024, 64, BigInt64Array.from(pattern, (v) => BigInt(v * 7)), pattern.map((v) => v * 7)],
  ];
  test.each(cases)('%s voxels are read in NIfTI order', (name, code, bitpix, raw, expected) => {
    const { volume, header } = loadVolume(save(`${name}.nii`, retyped(base, code, bitpix, raw)));
    expect(header.datatypeName).toBe(name);
    expect(volume.data).toEqual(fortranToC(shape, expected));
  });

  test('scl_slope/scl_inter apply in float32 for int16; slope 0 or NaN means no scaling', () => {
    const raw = Int16Array.from(pattern, (v) => v * 3);
    const bytes = retyped(base, 4, 16, raw);
    const scaled = patch(bytes, (v) => (v.setFloat32(112, 0.1, true), v.setFloat32(116, -1024, true)));
    const f = Math.fround;
    const expected = pattern.map((v) => f(f(v * 3 * f(0.1)) + -1024));
    expect(loadVolume(save('scaled.nii', scaled)).volume.data).toEqual(fortranToC(shape, expected));
    for (const slope of [0, NaN]) {
      const unscaled = patch(bytes, (v) => (v.setFloat32(112, slope, true), v.setFloat32(116, 7, true)));
      expect(loadVolume(save('unscaled.nii', unscaled)).volume.data).toEqual(fortranToC(shape, pattern.map((v) => v * 3)));
    }
  });

  test('big-endian files are byte-swapped', () => {
    const raw = Int16Array.from(pattern, (v) => v * 100);
    const le = retyped(base, 4, 16, raw);
    const be = le.slice();
    const lv = new DataView(le.buffer), bv = new DataView(be.buffer);
    bv.setInt32(0, 348, false);
    for (let i = 0; i < 8; i++) bv.setInt16(40 + 2 * i, lv.getInt16(40 + 2 * i, true), false);
    for (const o of [70, 72, 252, 254]) bv.setInt16(o, lv.getInt16(o, true), false);
    for (let o = 76; o < 120; o += 4) bv.setFloat32(o, lv.getFloat32(o, true), false);
    for (let o = 256; o < 328; o += 4) bv.setFloat32(o, lv.getFloat32(o, true), false);
    for (let i = 0; i < 24; i++) bv.setInt16(352 + 2 * i, raw[i], false);
    const { volume, header } = loadVolume(save('be.nii', be));
    expect(header.littleEndian).toBe(false);
    expect(volume.data).toEqual(fortranToC(shape, pattern.map((v) => v * 100)));
  });

  test('NIfTI-2 with float64 scaling and an sform', () => {
    const bytes = new Uint8Array(544 + 24 * 2);
    const v = new DataView(bytes.buffer);
    v.setInt32(0, 540, true);
    bytes.set([0x6e, 0x2b, 0x32, 0, 0x0d, 0x0a, 0x1a, 0x0a], 4);
    v.setInt16(12, 4, true);
    v.setInt16(14, 16, true);
    [3, 3, 4, 2, 1, 1, 1, 1].forEach((d, i) => v.setBigInt64(16 + 8 * i, BigInt(d), true));
    [1, 0.5, 0.6, 2, 1, 1, 1, 1].forEach((p, i) => v.setFloat64(104 + 8 * i, p, true));
    v.setBigInt64(168, 544n, true);
    v.setFloat64(176, 0.1, true);
    v.setFloat64(184, -1000, true);
    v.setInt32(348, 2, true);
    const srow = [0.5, 0, 0, -3, 0, 0.6, 0, 4, 0, 0, 2, 5.5];
    srow.forEach((s, i) => v.setFloat64(400 + 8 * i, s, true));
    pattern.forEach((p, i) => v.setInt16(544 + 2 * i, p, true));
    const { volume, header } = loadVolume(save('v2.nii', bytes));
    expect(header.version).toBe(2);
    expect(volume.affine).toEqual([...srow, 0, 0, 0, 1]);
    expect(volume.data).toEqual(fortranToC(shape, pattern.map((p) => Math.fround(p * 0.1 - 1000))));
  });

  test('gzip is detected by content, not by name', () => {
    const bytes = encodeNifti(sampleVolume(), 'float32');
    expect(loadVolume(save('really-gz.nii', zlib.gzipSync(bytes))).volume.data).toEqual(sampleVolume().data);
    expect(loadVolume(save('not-gz.nii.gz', bytes)).volume.data).toEqual(sampleVolume().data);
  });

  test('a 4-D volume with one time point is squeezed to 3-D', () => {
    const bytes = patch(encodeNifti(sampleVolume(), 'float32'), (v) => (v.setInt16(40, 4, true), v.setInt16(48, 1, true)));
    expect(loadVolume(save('4d1.nii', bytes)).volume.shape).toEqual([5, 4, 3]);
  });
});

describe('bad input is a one-line BadVolumeError naming the file and the problem', () => {
  const good = encodeNifti(sampleVolume(), 'float32');
  const bad: [string, () => Uint8Array, RegExp][] = [
    ['a real 4-D volume', () => patch(good, (v) => (v.setInt16(40, 4, true), v.setInt16(48, 2, true))), /4-D image \[5, 4, 3, 2\]/],
    ['a 2-D image', () => patch(good, (v) => v.setInt16(40, 2, true)), /2-D image/],
    ['a zero dimension', () => patch(good, (v) => v.setInt16(44, 0, true)), /zero or negative dimension/],
    ['absurd dimensions', () => patch(good, (v) => [42, 44, 46].forEach((o) => v.setInt16(o, 9000, true))), /absurd dimensions/],
    ['a dimension above 10000', () => patch(good, (v) => v.setInt16(42, 20000, true)), /absurd dimensions/],
    ['NaN voxels', () => patch(good, (v) => v.setFloat32(352 + 8, NaN, true)), /1 voxels are NaN or infinite/],
    ['infinite voxels', () => patch(good, (v) => v.setFloat32(356, Infinity, true)), /NaN or infinite/],
    ['an unsupported datatype', () => patch(good, (v) => v.setInt16(70, 128, true)), /unsupported NIfTI datatype code 128/],
    ['a wrong bitpix', () => patch(good, (v) => v.setInt16(72, 16, true)), /bitpix 16 does not match/],
    ['a truncated .nii', () => good.subarray(0, good.length - 10), /truncated/],
    ['a truncated header', () => good.subarray(0, 200), /truncated NIfTI-1 header/],
    ['a truncated .nii.gz', () => zlib.gzipSync(good).subarray(0, 100), /truncated|corrupt/],
    ['corrupt gzip data', () => patch(zlib.gzipSync(good), (v) => [20, 21, 22, 23].forEach((o) => v.setUint8(o, 0xff))), /corrupt|truncated|not a NIfTI/],
    ['a text file', () => new TextEncoder().encode('hello, this is not an image\n'.repeat(30)), /not a NIfTI file/],
    ['an empty file', () => new Uint8Array(0), /not a NIfTI file/],
    ['a .hdr/.img pair header', () => patch(good, (v) => v.setUint8(345, 0x69)), /header\/image pair/],
  ];
  test.each(bad)('%s', (name, make, message) => {
    const file = save(`bad-${name.replace(/\W+/g, '-')}.nii`, make());
    let error: unknown;
    try {
      loadVolume(file);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BadVolumeError);
    const text = (error as Error).message;
    expect(text.startsWith(`${file}: `)).toBe(true);
    expect(text).toMatch(message);
    expect(text).not.toContain('\n');
  });

  test('a missing file', () => {
    expect(() => loadVolume(path.join(tmp, 'nope.nii.gz'))).toThrow(/nope\.nii\.gz: cannot open \(ENOENT\)/);
  });
});
