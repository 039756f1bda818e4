import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pairSource } from '../../data/cache/pair-task';
import { preprocessSpec } from '../../data/cache/pipeline-task';
import { loadDecathlonList, loadSegmentationDatalist } from '../../data/datalist';
import { BadSourceFileError, CursorMismatchError, LoaderClosedError, LoaderWorkerCrashError, NoUsableFileError } from '../../data/loader/errors';
import { LoaderBatch, BatchLoaderOptions, createBatchLoader, createSegmentationLoader, LoaderSource, PairLoaderSource } from '../../data/loader/loader';
import { EpochSchedule } from '../../data/loader/schedule';
import { loadVolume } from '../../data/nifti/read';
import { writePhantomDataset } from '../../data/phantom/dataset';
import { writeLabelNifti } from '../../data/segmentation/label-map';

let dir: string;
let json: string;
let sources: LoaderSource[];
let broken: LoaderSource;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'voco-loader-'));
  json = writePhantomDataset(join(dir, 'phantoms'), { count: 4, seed: 11, phantom: { geometry: { inPlaneSize: [40, 56], slices: [16, 24] } } });
  sources = loadDecathlonList(json).map((path) => ({ path, preprocessing: preprocessSpec('abdomen') }));
  writeFileSync(join(dir, 'broken.nii'), Buffer.alloc(400, 7));
  broken = { path: join(dir, 'broken.nii'), preprocessing: preprocessSpec('abdomen') };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = (over: Partial<BatchLoaderOptions> = {}): BatchLoaderOptions => ({
  sources,
  cacheDir: join(dir, 'cache'),
  seed: 5,
  batchSize: 2,
  swBatchSize: 2,
  ...over,
});

/** Bitwise equality (jest's toEqual walks millions of elements one by one). */
function same(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

async function take(options: BatchLoaderOptions, count: number): Promise<LoaderBatch[]> {
  const loader = createBatchLoader(options);
  try {
    // All requested at once: they must still come back in step order.
    return await Promise.all(Array.from({ length: count }, () => loader.next()));
  } finally {
    await loader.close();
  }
}

describe('createBatchLoader', () => {
  it('gives the same batches, in step order, whatever the number of workers', async () => {
    const inline = await take(base({ workers: 0 }), 3);
    const one = await take(base({ workers: 1 }), 3);
    const two = await take(base({ workers: 2, prefetch: 3 }), 3);
    expect(inline.map((b) => b.step)).toEqual([0, 1, 2]);
    for (const other of [one, two]) {
      expect(other.map((b) => b.step)).toEqual([0, 1, 2]);
      other.forEach((b, i) => {
        expect(same(b.images, inline[i].images)).toBe(true);
        expect(same(b.crops, inline[i].crops)).toBe(true);
        expect(same(b.labels, inline[i].labels)).toBe(true);
        expect(b.cursor).toEqual(inline[i].cursor);
      });
    }
    const b = one[0];
    expect(b.dims).toEqual({ images: [4, 1, 64, 64, 64], crops: [18, 1, 64, 64, 64], labels: [2, 2, 9] });
    expect(b.images.length).toBe(4 * 64 ** 3);
    expect(b.crops.length).toBe(18 * 64 ** 3);
    // Each row of labels is a set of overlap fractions of the 9 base crops: they sum to 1.
    for (let r = 0; r < 4; r++) expect(b.labels.subarray(r * 9, r * 9 + 9).reduce((x, y) => x + y)).toBeCloseTo(1, 5);
    // 4 sources, 2 per batch: steps 0 and 1 are epoch 0, step 2 starts epoch 1.
    expect(one.map((x) => x.cursor)).toEqual([
      { step: 1, epoch: 0, index: 2 },
      { step: 2, epoch: 1, index: 0 },
      { step: 3, epoch: 1, index: 2 },
    ]);
    expect(same(inline[0].images, inline[1].images)).toBe(false);
  });

  it('resumes from a saved cursor with the batches an uninterrupted run draws', async () => {
    const straight = await take(base({ workers: 1, batchSize: 3 }), 4);
    const resumed = await take(base({ workers: 1, batchSize: 3, startCursor: straight[1].cursor }), 2);
    expect(resumed.map((b) => b.step)).toEqual([2, 3]);
    expect(same(resumed[0].images, straight[2].images)).toBe(true);
    expect(same(resumed[1].crops, straight[3].crops)).toBe(true);
    expect(same(resumed[1].crops, straight[2].crops)).toBe(false);
    expect(() => createBatchLoader(base({ startCursor: { step: 9, epoch: 0, index: 4 } }))).toThrow(CursorMismatchError);
  });

  it('splits each global batch over ranks: two ranks with batch 1 read, slot by slot, what one process with batch 2 reads', async () => {
    const whole = await take(base({ workers: 0 }), 3);
    const ranks = await Promise.all([0, 1].map((rank) => take(base({ workers: 0, batchSize: 1, share: { rank, size: 2 } }), 3)));
    const slot = (array: Float32Array, i: number, of: number) => array.subarray((i * array.length) / of, ((i + 1) * array.length) / of);
    for (let step = 0; step < 3; step++) {
      for (const [rank, batches] of ranks.entries()) {
        const part = batches[step];
        expect(part.dims.images).toEqual([2, 1, 64, 64, 64]);
        expect(part.cursor).toEqual(whole[step].cursor);
        for (const key of ['images', 'crops', 'labels'] as const) expect([step, rank, key, same(part[key], slot(whole[step][key], rank, 2))]).toEqual([step, rank, key, true]);
      }
      expect(same(ranks[0][step].images, ranks[1][step].images)).toBe(false);
    }
    expect(() => createBatchLoader(base({ share: { rank: 2, size: 2 } }))).toThrow('rank 2 of 2 is not a valid rank');
  });

  it('skips a bad file with one warning, counts it, and fills the batch from the next file', async () => {
    const warnings: string[] = [];
    const loader = createBatchLoader(base({ sources: [broken, ...sources], workers: 1, batchSize: 4, onWarning: (w) => warnings.push(w) }));
    try {
      for (let i = 0; i < 4; i++) {
        const batch = await loader.next();
        expect(batch.images.length).toBe(8 * 64 ** 3);
      }
      // 5 entries per epoch and 16 drawn: the broken file came up 3 or 4 times.
      expect(loader.skippedCount).toBeGreaterThanOrEqual(3);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/skipping bad file .*broken\.nii: /);
      expect(loader.badFiles).toEqual([{ path: broken.path, reason: expect.stringMatching(/NIfTI/) }]);
    } finally {
      await loader.close();
    }
  });

  it("stops with a clear error on a bad file under onBadFile 'fail', and when no file is usable", async () => {
    const fail = createBatchLoader(base({ sources: [broken, ...sources], workers: 1, batchSize: 5, onBadFile: 'fail' }));
    await expect(fail.next()).rejects.toThrow(BadSourceFileError);
    await expect(fail.next()).rejects.toThrow(/broken\.nii/);
    await fail.close();

    // With prefetching, the steps before the bad file's still arrive; the failure comes when its step is due.
    const badStep = new EpochSchedule([1, 1, 1, 1, 1], 4).order(0).indexOf(0);
    expect(badStep).toBe(4); // seed 4 puts the broken file last in epoch 0
    const ahead = createBatchLoader(base({ sources: [broken, ...sources], seed: 4, workers: 2, prefetch: 5, batchSize: 1, onBadFile: 'fail' }));
    for (let step = 0; step < badStep; step++) expect((await ahead.next()).step).toBe(step);
    await expect(ahead.next()).rejects.toThrow(BadSourceFileError);
    await ahead.close();

    const none = createBatchLoader(base({ sources: [broken], workers: 1, onWarning: () => undefined }));
    await expect(none.next()).rejects.toThrow(NoUsableFileError);
    await none.close();
    expect(() => createBatchLoader(base({ sources: [] }))).toThrow(NoUsableFileError);
  });

  it('turns a dying worker into an error instead of a hang', async () => {
    // A cache folder that is a file: the worker's cache read fails with ENOTDIR, which is no bad-source error.
    writeFileSync(join(dir, 'not-a-folder'), 'x');
    const loader = createBatchLoader(base({ cacheDir: join(dir, 'not-a-folder'), workers: 2 }));
    await expect(loader.next()).rejects.toThrow(LoaderWorkerCrashError);
    await expect(loader.next()).rejects.toThrow(/worker/);
    await loader.close();
  });

  it('builds no more than `prefetch` batches ahead of the consumer, and close() rejects what is pending', async () => {
    const cacheDir = join(dir, 'prefetch-cache');
    const loader = createBatchLoader(base({ cacheDir, workers: 2, prefetch: 1, batchSize: 1 }));
    const first = await loader.next();
    expect(first.step).toBe(0);
    const cached = (): number =>
      readdirSync(cacheDir).flatMap((sub) => readdirSync(join(cacheDir, sub))).filter((f) => f.endsWith('.vol')).length;
    const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
    for (let waited = 0; cached() < 2 && waited < 20000; waited += 100) await sleep(100);
    await sleep(700);
    // Step 0 was consumed and step 1 prefetched; nothing else was built, so two of the four volumes are cached.
    expect(cached()).toBe(2);
    const pending = Promise.allSettled([loader.next(), loader.next(), loader.next()]);
    await loader.close();
    const settled = await pending;
    const rejected = settled.filter((s) => s.status === 'rejected') as PromiseRejectedResult[];
    expect(rejected.length).toBeGreaterThan(0);
    for (const r of rejected) expect(r.reason).toBeInstanceOf(LoaderClosedError);
    await expect(loader.next()).rejects.toThrow(LoaderClosedError);
  });
});

describe('createSegmentationLoader', () => {
  // A real phantom CT with an all-background label map: under an image threshold of 1 (the window maps HU to
  // [0, 1], so no voxel is above it) RandCropByPosNegLabel finds neither a foreground nor a background centre.
  // (At the default threshold 0 the chain's foreground crop always leaves a voxel above it.)
  const sample = { roi: 32, numSamples: 1, imageThreshold: 1 };
  let pairs: PairLoaderSource[];
  let empty: PairLoaderSource;
  beforeAll(() => {
    pairs = loadSegmentationDatalist(json).training.map((c) => pairSource(c.image, c.label, 'abdomen') as PairLoaderSource);
    const { volume, header } = loadVolume(pairs[0].path);
    const label = join(dir, 'empty_label.nii.gz');
    writeLabelNifti(label, { ...volume, data: new Float32Array(volume.data.length) }, header);
    empty = pairSource(pairs[0].path, label, 'abdomen') as PairLoaderSource;
  });

  it.each([0, 1])('skips a pair with no crop centre as a bad file, with a warning naming it (workers %i), or stops on it with one line', async (workers) => {
    const warnings: string[] = [];
    const options = { sources: [empty, ...pairs], cacheDir: join(dir, 'pair-cache'), seed: 5, batchSize: 5, sample, workers };
    const loader = createSegmentationLoader({ ...options, onWarning: (w) => warnings.push(w) });
    try {
      for (let step = 0; step < 2; step++) {
        const batch = await loader.next();
        expect(batch.image.length).toBe(5 * 32 ** 3);
        // Every slot was filled from a labelled pair: each crop holds foreground.
        for (let slot = 0; slot < 5; slot++) expect(batch.label.subarray(slot * 32 ** 3, (slot + 1) * 32 ** 3).some((v) => v > 0)).toBe(true);
      }
      const reason = 'no voxel to centre a crop on (the label is empty and no image voxel is above the threshold)';
      expect(warnings).toEqual([`skipping bad file ${empty.path}: ${reason}`]);
      expect(loader.badFiles).toEqual([{ path: empty.path, reason }]);
      expect(loader.skippedCount).toBe(2);
    } finally {
      await loader.close();
    }

    const fail = createSegmentationLoader({ ...options, onBadFile: 'fail' });
    await expect(fail.next()).rejects.toThrow(new BadSourceFileError(`${empty.path}: no voxel to centre a crop on (the label is empty and no image voxel is above the threshold)`));
    await fail.close();
  });
});
