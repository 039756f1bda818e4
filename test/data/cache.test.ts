import { mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeEntry, encodeEntry } from '../../data/cache/format';
import { cacheKey, sourceIdentity } from '../../data/cache/key';
import { loadOrBuild } from '../../data/cache/load-or-build';
import { preprocessForCache, preprocessSpec } from '../../data/cache/pipeline-task';
import type { CacheDtype } from '../../data/cache/quantize';
import { VolumeCache } from '../../data/cache/store';
import type { Volume } from '../../data/volume';
import { HAVE_REFERENCE, REFERENCE, referenceDescribe } from '../helpers/reference';

/** MONAI 1.3.2 reference outputs. */
const PREPROCESS = join(REFERENCE, 'preprocess');

/** MONAI 1.3.2's output of the whole abdomen chain on a reference case (values in [0, 1]). */
function referenceVolume(caseName: string, pipeline: string): Volume {
  const info = JSON.parse(readFileSync(join(PREPROCESS, caseName, 'case.json'), 'utf8'));
  const last = info.pipelines[pipeline].steps.at(-1);
  const bytes = readFileSync(join(PREPROCESS, caseName, last.file));
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return { data, shape: last.shape.slice(1), affine: last.affine.flat() };
}

function maxError(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

// Without the fixtures the groups that use it are skipped (referenceDescribe).
const volume = (HAVE_REFERENCE ? referenceVolume('v04_ras_int16_halfround_nii', 'abdomen') : undefined) as Volume;
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'voco-cache-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

referenceDescribe('cache entry format', () => {
  // Bounds for values in [0, 1]: half a quantisation step (plus float32 rounding of the decode), half an ulp of float16 at 1.
  const bounds: Record<CacheDtype, number> = {
    float32: 0,
    uint16: 0.5 / 65535 + 1e-7,
    uint12: 0.5 / 4095 + 1e-7,
    float16: 2 ** -12,
    uint8: 0.5 / 255 + 1e-7,
  };

  it.each(Object.entries(bounds))('%s keeps shape and affine and stays within its error bound, with and without deflate', (dtype, bound) => {
    for (const compression of ['none', 'deflate'] as const) {
      const back = decodeEntry(encodeEntry('k', volume, { dtype: dtype as CacheDtype, compression }), 'k');
      expect(back.shape).toEqual([64, 64, 69]);
      expect(back.affine).toEqual(Array.from(volume.affine));
      const error = maxError(back.data, volume.data);
      expect(error).toBeLessThanOrEqual(bound);
      if (dtype !== 'float32') expect(error).toBeGreaterThan(0);
    }
  });

  it('uint16 takes half the bytes of float32 and keeps 0 and 1 exact', () => {
    const f32 = encodeEntry('k', volume, { dtype: 'float32', compression: 'none' });
    const u16 = encodeEntry('k', volume, { dtype: 'uint16', compression: 'none' });
    expect(u16.length).toBeLessThan(f32.length / 2 + 1024);
    const back = decodeEntry(u16, 'k').data;
    let extremes = 0;
    let changed = 0;
    for (let i = 0; i < back.length; i++) {
      if (volume.data[i] !== 0 && volume.data[i] !== 1) continue;
      extremes++;
      if (back[i] !== volume.data[i]) changed++;
    }
    expect(extremes).toBeGreaterThan(1000);
    expect(changed).toBe(0);
  });

  it('detects a flipped byte, a truncation and a foreign key', () => {
    const bytes = encodeEntry('k', volume, { dtype: 'uint16', compression: 'none' });
    const flipped = Buffer.from(bytes);
    flipped[flipped.length >> 1] ^= 0x10;
    expect(() => decodeEntry(flipped, 'k')).toThrow(/checksum/);
    expect(() => decodeEntry(bytes.subarray(0, bytes.length - 100), 'k')).toThrow(/checksum/);
    expect(() => decodeEntry(bytes.subarray(0, 5), 'k')).toThrow(/not a cache entry/);
    expect(() => decodeEntry(bytes, 'other')).toThrow(/expected other/);
  });
});

describe('cache key', () => {
  it('follows the source file identity and the preprocessing parameters, not their order', async () => {
    const file = join(dir, 'a.nii');
    writeFileSync(file, 'x');
    const id = await sourceIdentity(file);
    const params = { family: 'abdomen', spacing: [1.5, 1.5, 1.5], window: [-175, 250] };
    const key = cacheKey(id, params);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(cacheKey(id, { window: [-175, 250], spacing: [1.5, 1.5, 1.5], family: 'abdomen' })).toBe(key);
    expect(cacheKey(id, { ...params, family: 'chest' })).not.toBe(key);
    utimesSync(file, new Date(2020, 1, 1), new Date(2020, 1, 1));
    expect(cacheKey(await sourceIdentity(file), params)).not.toBe(key);
    writeFileSync(file, 'xy');
    expect((await sourceIdentity(file)).size).toBe(2);
  });
});

referenceDescribe('VolumeCache', () => {
  it('writes atomically, reads back what write returned, and reports missing, corrupt and bad entries', async () => {
    const cache = new VolumeCache({ dir });
    expect(await cache.lookup('ab12')).toEqual({ state: 'missing' });
    const written = await cache.write('ab12', volume);
    const found = await cache.lookup('ab12');
    expect(found.state).toBe('hit');
    if (found.state === 'hit') expect(found.volume.data).toEqual(written.data);
    expect(readdirSync(join(dir, 'ab'))).toEqual(['ab12.vol']);

    const path = cache.entryPath('ab12');
    writeFileSync(path, readFileSync(path).subarray(0, 1000));
    expect(await cache.lookup('ab12')).toEqual({ state: 'corrupt', reason: expect.stringMatching(/checksum/) });

    await cache.recordBad('cd34', { path: '/data/x.nii', reason: 'truncated file' });
    expect(await cache.lookup('cd34')).toEqual({ state: 'bad', record: { path: '/data/x.nii', reason: 'truncated file' } });
    await cache.write('cd34', volume);
    expect((await cache.lookup('cd34')).state).toBe('hit');
  });

  it('lets concurrent writers of one key both succeed with a valid entry and no temp files left', async () => {
    const a = new VolumeCache({ dir, dtype: 'uint16' });
    const b = new VolumeCache({ dir, dtype: 'float16', compression: 'deflate' });
    await Promise.all([a.write('ef56', volume), b.write('ef56', volume), a.write('ef56', volume), b.write('ef56', volume)]);
    expect((await a.lookup('ef56')).state).toBe('hit');
    expect(readdirSync(join(dir, 'ef'))).toEqual(['ef56.vol']);
  });
});

referenceDescribe('loadOrBuild', () => {
  it('preprocesses once, then serves the entry; remembers a bad file until asked to retry or the file changes', async () => {
    const cache = new VolumeCache({ dir });
    const source = { path: join(PREPROCESS, 'v02_ras_float32_nii', 'ct_ras_float32.nii'), preprocessing: preprocessSpec('chest') };
    const built = await loadOrBuild(cache, source, preprocessForCache);
    expect(built.status).toBe('built');
    const cached = await loadOrBuild(cache, source, preprocessForCache);
    expect(cached.status).toBe('cached');
    if (built.status === 'built' && cached.status === 'cached') {
      expect(cached.volume.data).toEqual(built.volume.data);
      // MONAI's chest chain on this case, within the uint16 storage error.
      expect(maxError(cached.volume.data, referenceVolume('v02_ras_float32_nii', 'chest').data)).toBeLessThan(1e-4);
    }

    const bad = { path: join(dir, 'bad.nii'), preprocessing: preprocessSpec('abdomen') };
    writeFileSync(bad.path, Buffer.alloc(348));
    expect(await loadOrBuild(cache, bad, preprocessForCache)).toEqual({ status: 'bad', reason: expect.any(String), known: false });
    expect(await loadOrBuild(cache, bad, preprocessForCache)).toMatchObject({ status: 'bad', known: true });
    expect(await loadOrBuild(cache, bad, preprocessForCache, { retryBad: true })).toMatchObject({ status: 'bad', known: false });
    writeFileSync(bad.path, readFileSync(join(PREPROCESS, 'v02_ras_float32_nii', 'ct_ras_float32.nii')));
    expect((await loadOrBuild(cache, bad, preprocessForCache)).status).toBe('built');
    expect(await loadOrBuild(cache, { ...bad, path: join(dir, 'gone.nii') }, preprocessForCache)).toEqual({
      status: 'bad',
      reason: 'file not found',
      known: false,
    });
  });
});
