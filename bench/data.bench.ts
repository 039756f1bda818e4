/**
 * Data pipeline throughput on phantom CT volumes (the built-in dataset, default geometry):
 *  - the error and size of each cache storage type on the real preprocessed volumes;
 *  - volumes/s from raw NIfTI (read + MONAI-equal preprocessing) and from the cache;
 *  - batches/s of the worker loader (from a filled cache) with 1 and 2 workers.
 * Run: npx tsx bench/data.bench.ts [volumes=6] [batches=12]
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Rng } from '../common/rng';
import { decodeEntry, encodeEntry, CacheCompression } from '../data/cache/format';
import { cacheKey, sourceIdentity } from '../data/cache/key';
import { preprocessSpec } from '../data/cache/pipeline-task';
import { CACHE_DTYPES } from '../data/cache/quantize';
import { VolumeCache } from '../data/cache/store';
import { loadDecathlonList } from '../data/datalist';
import { createBatchLoader } from '../data/loader/loader';
import { loadVolume } from '../data/nifti/read';
import { writePhantomDataset } from '../data/phantom/dataset';
import { preprocess } from '../data/pipeline';
import type { Volume } from '../data/volume';
import { vocoOptions } from '../data/voco/options';
import { sampleVoco } from '../data/voco/sample';

const spec = preprocessSpec('abdomen');

function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function errors(a: Float32Array, b: Float32Array): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    sum += e;
    if (e > max) max = e;
  }
  return { max, mean: sum / a.length };
}

function timed<T>(action: () => T): [T, number] {
  const t = performance.now();
  const result = action();
  return [result, performance.now() - t];
}

async function timedAsync<T>(action: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const result = await action();
  return [result, performance.now() - t];
}

function storageTable(volumes: Volume[]): string {
  const rows: (string | number)[][] = [];
  const voxels = volumes.reduce((n, v) => n + v.data.length, 0);
  for (const dtype of CACHE_DTYPES) {
    for (const compression of ['none', 'deflate'] as CacheCompression[]) {
      let bytes = 0;
      let encodeMs = 0;
      let decodeMs = 0;
      let max = 0;
      let meanSum = 0;
      for (const v of volumes) {
        const [entry, e] = timed(() => encodeEntry('k', v, { dtype, compression }));
        const [back, d] = timed(() => decodeEntry(entry, 'k'));
        const err = errors(back.data, v.data);
        bytes += entry.length;
        encodeMs += e;
        decodeMs += d;
        max = Math.max(max, err.max);
        meanSum += err.mean * v.data.length;
      }
      rows.push([
        dtype,
        compression,
        (bytes / voxels).toFixed(2),
        max.toExponential(2),
        (meanSum / voxels).toExponential(2),
        ((encodeMs / voxels) * 1e6).toFixed(1),
        ((decodeMs / voxels) * 1e6).toFixed(1),
      ]);
    }
  }
  return table(['dtype', 'compression', 'bytes/voxel', 'max error', 'mean error', 'encode ms/Mvoxel', 'decode ms/Mvoxel'], rows);
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 6);
  const batches = Number(process.argv[3] ?? 12);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-data-bench-'));
  try {
    const files = loadDecathlonList(writePhantomDataset(path.join(dir, 'phantoms'), { count, seed: 2024 }));
    const rawBytes = files.reduce((n, f) => n + fs.statSync(f).size, 0);

    // Raw NIfTI: read (gzip) and preprocess, per volume.
    let readMs = 0;
    let preprocessMs = 0;
    const volumes: Volume[] = [];
    const shapes: string[] = [];
    for (const file of files) {
      const [loaded, r] = timed(() => loadVolume(file).volume);
      const [out, p] = timed(() => preprocess(loaded, 'abdomen'));
      shapes.push(`${loaded.shape.join('x')} -> ${out.shape.join('x')}`);
      readMs += r;
      preprocessMs += p;
      volumes.push(out);
    }
    const cacheVoxels = volumes.reduce((n, v) => n + v.data.length, 0);

    // From the cache (default storage), after writing it once.
    const cache = new VolumeCache({ dir: path.join(dir, 'cache') });
    const keys = await Promise.all(files.map(async (f) => cacheKey(await sourceIdentity(f), spec)));
    for (const [i, key] of keys.entries()) await cache.write(key, volumes[i]);
    const rounds = 3;
    const [, cacheMs] = await timedAsync(async () => {
      for (let r = 0; r < rounds; r++) for (const key of keys) await cache.lookup(key);
    });

    const voco = vocoOptions({ swBatchSize: 2 });
    const [, sampleMs] = timed(() => volumes.forEach((v, i) => sampleVoco(v, new Rng(i), voco)));

    const loaderRows: (string | number)[][] = [];
    for (const workers of [0, 1, 2]) {
      const loader = createBatchLoader({
        sources: files.map((f) => ({ path: f, preprocessing: spec })),
        cacheDir: cache.dir,
        seed: 1,
        batchSize: 2,
        swBatchSize: 2,
        workers,
      });
      await loader.next(); // start-up (threads, module loading) is not throughput
      const [, ms] = await timedAsync(async () => {
        for (let b = 0; b < batches; b++) await loader.next();
      });
      await loader.close();
      loaderRows.push([workers === 0 ? '0 (calling thread)' : workers, batches, (batches / (ms / 1000)).toFixed(2), (ms / batches).toFixed(0)]);
    }

    const cpu = os.cpus();
    console.log(`# Data pipeline benchmark\n`);
    console.log(`${new Date().toISOString().slice(0, 10)}, ${cpu[0].model} (${cpu.length} cores), Node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    console.log(`${count} phantom CT volumes (${(rawBytes / 1e6).toFixed(1)} MB .nii.gz), abdomen pipeline: ${shapes.join(', ')}\n`);
    console.log(`## Cache storage types (all ${count} preprocessed volumes, values in [0, 1])\n`);
    console.log(storageTable(volumes) + '\n');
    console.log(`## Volumes per second\n`);
    console.log(
      table(
        ['path', 'ms/volume', 'volumes/s'],
        [
          ['raw NIfTI: read .nii.gz', (readMs / count).toFixed(1), ''],
          ['raw NIfTI: MONAI-equal preprocessing', (preprocessMs / count).toFixed(1), ''],
          ['raw NIfTI: read + preprocess', ((readMs + preprocessMs) / count).toFixed(1), (count / ((readMs + preprocessMs) / 1000)).toFixed(1)],
          ['VoCo sample of a preprocessed volume (region, 2 + 9 crops, augmentations)', (sampleMs / count).toFixed(1), ''],
          [
            `cache (uint16, ${((cacheVoxels * 2) / count / 1e6).toFixed(1)} MB/volume): read + verify + decode`,
            (cacheMs / (rounds * count)).toFixed(1),
            ((rounds * count) / (cacheMs / 1000)).toFixed(1),
          ],
        ],
      ) + '\n',
    );
    console.log(`## Loader (batch 2 volumes x sw 2, 64^3 crops, from the filled cache)\n`);
    console.log(table(['workers', 'batches', 'batches/s', 'ms/batch'], loaderRows));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
