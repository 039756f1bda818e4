import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeEntry, decodePairEntry, encodeEntry, encodePairEntry } from '../../data/cache/format';
import { buildCache } from '../../data/cache/build';
import { loadOrBuildPair, pairSource } from '../../data/cache/pair-task';
import { VolumeCache } from '../../data/cache/store';
import { loadLabelMap } from '../../data/segmentation/label-map';
import { preprocessPair } from '../../data/segmentation/preprocess';
import { invertLabels } from '../../data/transforms/invert';
import { REFERENCE } from '../helpers/reference';

const CASE = join(REFERENCE, 'segmentation/labels/v02_psr_int16slope_int16_nii');
const haveReference = existsSync(CASE);
if (!haveReference) console.log(`skipped labelled cache tests: no reference fixtures at ${CASE}`);
const describeWithReference = haveReference ? describe : describe.skip;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'voco-pair-cache-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function maxError(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

describeWithReference('labelled pairs in the volume cache', () => {
  const image = join(CASE, 'ct_psr_int16_slope.nii');
  const label = join(CASE, 'label_psr_int16.nii');
  const expected = haveReference ? preprocessPair(image, label, 'abdomen') : undefined;

  test('a pair entry keeps the label exactly (uint8, or int16 past 255 classes) and the record, beside the quantised image', () => {
    const pair = expected!;
    for (const labelData of [pair.label.data, pair.label.data.map((v) => (v === 4 ? 1000 : v))]) {
      for (const compression of ['none', 'deflate'] as const) {
        const bytes = encodePairEntry('k', { ...pair, label: { ...pair.label, data: labelData } }, { dtype: 'uint8', compression });
        const back = decodePairEntry(bytes, 'k');
        expect(Buffer.from(back.label.data.buffer).equals(Buffer.from(labelData.buffer))).toBe(true);
        expect(back.label.shape).toEqual(pair.image.shape);
        expect(back.record).toEqual(JSON.parse(JSON.stringify(pair.record)));
        expect(maxError(back.image.data, pair.image.data)).toBeLessThanOrEqual(0.5 / 255 + 1e-7);
        expect(maxError(back.image.data, pair.image.data)).toBeGreaterThan(0);
        // The two kinds of entry are not mistaken for each other.
        expect(() => decodeEntry(bytes, 'k')).toThrow(/image\/label pair/);
      }
    }
    expect(() => decodePairEntry(encodeEntry('k', pair.image, { dtype: 'uint16', compression: 'none' }), 'k')).toThrow(/image only/);
  });

  test('loadOrBuildPair builds once, then serves the pair; a changed label file makes a new entry', async () => {
    const cache = new VolumeCache({ dir });
    const labelCopy = join(dir, 'label.nii');
    copyFileSync(label, labelCopy);
    const source = pairSource(image, labelCopy, 'abdomen');
    const built = await loadOrBuildPair(cache, source);
    const cached = await loadOrBuildPair(cache, source);
    expect([built.status, cached.status]).toEqual(['built', 'cached']);
    if (cached.status === 'bad') throw new Error(cached.reason);
    expect(Buffer.from(cached.volume.label.data.buffer).equals(Buffer.from(expected!.label.data.buffer))).toBe(true);
    expect(cached.volume.record).toEqual(JSON.parse(JSON.stringify(expected!.record)));
    // The default uint16 image storage.
    expect(maxError(cached.volume.image.data, expected!.image.data)).toBeLessThanOrEqual(0.5 / 65535 + 1e-7);

    // The cached record inverts the cached label as MONAI's Invertd does (its voxel agreement with the label file).
    const back = invertLabels(cached.volume.label, cached.volume.record);
    const original = loadLabelMap(label).volume.data;
    const agreeing = original.filter((v, i) => v === back.data[i]).length;
    const info = JSON.parse(readFileSync(join(CASE, 'case.json'), 'utf8'));
    expect(agreeing / original.length).toBe(info.inversion.label_roundtrip_voxel_agreement);

    utimesSync(labelCopy, new Date(), new Date(Date.now() + 5000));
    expect((await loadOrBuildPair(cache, source)).status).toBe('built');
  });

  test('a missing label file or a label on another grid is recorded as bad, naming the file', async () => {
    const cache = new VolumeCache({ dir });
    const gone = join(dir, 'gone.nii');
    expect(await loadOrBuildPair(cache, pairSource(image, gone, 'abdomen'))).toEqual({
      status: 'bad',
      reason: `${gone}: file not found`,
      known: false,
    });
    const otherGrid = join(REFERENCE, 'segmentation/labels/v01_lps_int16_uint8_gz/label_lps_uint8.nii.gz');
    const outcome = await loadOrBuildPair(cache, pairSource(image, otherGrid, 'abdomen'));
    expect(outcome).toMatchObject({ status: 'bad', known: false });
    if (outcome.status === 'bad') expect(outcome.reason).toMatch(new RegExp(`label ${otherGrid} .* not on the grid of its image ${image}`));
    expect(await loadOrBuildPair(cache, pairSource(image, otherGrid, 'abdomen'))).toMatchObject({ status: 'bad', known: true });
  });

  test('buildCache fills pair entries in a worker thread, reporting a bad pair', async () => {
    const otherGrid = join(REFERENCE, 'segmentation/labels/v01_lps_int16_uint8_gz/label_lps_uint8.nii.gz');
    const sources = [pairSource(image, label, 'abdomen'), pairSource(image, otherGrid, 'abdomen'), pairSource(image, label, 'chest')];
    const summary = await buildCache({ sources, cache: { dir }, workers: 1 });
    expect([summary.total, summary.built, summary.cached, summary.bad.length]).toEqual([3, 2, 0, 1]);
    expect(summary.bad[0].reason).toMatch(/is not on the grid of its image/);
    const outcome = await loadOrBuildPair(new VolumeCache({ dir }), sources[0]);
    expect(outcome.status).toBe('cached');
    if (outcome.status === 'cached') expect(Buffer.from(outcome.volume.label.data.buffer).equals(Buffer.from(expected!.label.data.buffer))).toBe(true);
  });
});
