/**
 * Peak memory and time of one VoCo training step (`Trainer.step`: forward, loss, EMA, gradients, AdamW) of the tiny
 * model (feature size 12, 1 volume, 1 random crop + 9 base crops = 10 rows) on the CPU, with the single training
 * model (crops per run 0) and in pieces of k crops. Each setting runs in its own process, so each peak resident
 * memory is that setting's alone. A setting whose expected peak exceeds the memory available now is skipped
 * rather than left to the OOM killer.
 * Run: npx tsx bench/voco-memory.bench.ts [roi=64] [threads=2] [cropsPerRun=0,1,2,5] [steps=2]
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Rng } from '../common/rng';
import { size } from '../graph/core/shape';
import { buildVocoGraph } from '../graph/models/voco/model';
import { resolveVocoOptions } from '../graph/models/voco/options';
import { writeVocoArtifacts } from '../graph/models/voco/artifacts';
import { largestDivisor } from '../graph/core/shape';
import { stepRows } from '../graph/models/voco/options';
import { Trainer } from '../runtime/session/trainer';
import { keepMask } from '../runtime/voco/masks';

const GiB = 2 ** 30;
const ROOT = path.resolve(__dirname, '..');

interface Measurement {
  readonly cropsPerRun: number;
  readonly stepSeconds: number[];
  readonly loadedGiB: number;
  readonly peakGiB: number;
}

/** One setting, in this process: artifacts, load, `steps` steps; prints a Measurement as JSON. */
async function child(roi: number, threads: number, cropsPerRun: number, steps: number): Promise<void> {
  const options = resolveVocoOptions({ preset: 'tiny', roi, batchSize: 1, swBatchSize: 1 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-memory-'));
  try {
    writeVocoArtifacts(dir, options, { optimizer: { kind: 'adamw', amsgrad: true }, encoderBatch: 1, cropsPerRun });
    const rng = new Rng(1);
    const voxels = roi ** 3;
    const feeds: Record<string, Float32Array> = {
      images: Float32Array.from({ length: voxels }, () => rng.uniform()),
      crops: Float32Array.from({ length: 9 * voxels }, () => rng.uniform()),
      labels: Float32Array.from({ length: 9 }, () => rng.uniform() / 9),
    };
    for (const m of buildVocoGraph(options, 'train').inputs.masks) feeds[m.tensor.name] = keepMask(rng, size(m.tensor.shape), m.p);
    const trainer = await Trainer.load(dir, { threads, seed: 1 });
    const loadedGiB = (process.resourceUsage().maxRSS * 1024) / GiB;
    const stepSeconds: number[] = [];
    for (let i = 0; i < steps; i++) {
      const started = process.hrtime.bigint();
      await trainer.step(feeds, { lr: 1e-4 });
      stepSeconds.push(Number(process.hrtime.bigint() - started) / 1e9);
    }
    await trainer.release();
    const result: Measurement = { cropsPerRun: largestDivisor(stepRows(options), cropsPerRun || Infinity), stepSeconds, loadedGiB, peakGiB: (process.resourceUsage().maxRSS * 1024) / GiB };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A rough peak for k rows per run at this roi, from the settings measured before it (linear in k). */
function expectedPeakGiB(done: readonly Measurement[], k: number): number | undefined {
  if (done.length < 2) return undefined;
  const [a, b] = done.slice(-2);
  const perRow = (b.peakGiB - a.peakGiB) / (b.cropsPerRun - a.cropsPerRun);
  return b.peakGiB + perRow * (k - b.cropsPerRun);
}

async function main(): Promise<void> {
  const [, , first, ...rest] = process.argv;
  if (first === '--child') {
    const [roi, threads, k, steps] = rest.map(Number);
    return child(roi, threads, k, steps);
  }
  const roi = Number(first ?? 64);
  const threads = Number(rest[0] ?? 2);
  const settings = (rest[1] ?? '0,1,2,5').split(',').map(Number);
  const steps = Number(rest[2] ?? 2);
  const rows = 10;
  const lines = [
    `${new Date().toISOString().slice(0, 10)}, ${os.cpus()[0]?.model ?? 'CPU'} (${os.cpus().length} cores), load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, ` +
      `${(os.totalmem() / GiB).toFixed(0)} GiB, Node ${process.versions.node}; tiny, roi ${roi}, ${rows} crops, ${threads} threads, AdamW-amsgrad step, last of ${steps} steps`,
    '',
    '| crops per run | step s | peak RSS after loading GiB | peak RSS GiB |',
    '|---|---|---|---|',
  ];
  process.stdout.write(lines.join('\n') + '\n');
  const done: Measurement[] = [];
  // Pieces from small to large, the single model (0) last: each expected peak comes from the ones before it.
  const ordered = [...settings.filter((k) => k > 0 && k < rows).sort((a, b) => a - b), ...settings.filter((k) => k === 0 || k >= rows)];
  for (const k of ordered) {
    const expected = expectedPeakGiB(done, k === 0 || k >= rows ? rows : k);
    const available = os.freemem() / GiB;
    if (expected !== undefined && expected > available - 1) {
      process.stdout.write(`| ${k || 'single model'} | skipped: about ${expected.toFixed(1)} GiB expected, ${available.toFixed(1)} GiB available | | |\n`);
      continue;
    }
    const run = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), __filename, '--child', String(roi), String(threads), String(k), String(steps)], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    });
    const line = run.stdout.trim().split('\n').pop() ?? '';
    if (run.status !== 0 || !line.startsWith('{')) {
      process.stdout.write(`| ${k || 'single model'} | failed (${run.signal ?? `exit ${run.status}`}): ${run.stderr.trim().split('\n').pop() ?? ''} | | |\n`);
      continue;
    }
    const m = JSON.parse(line) as Measurement;
    done.push(m);
    const label = k === 0 || k >= rows ? 'single model' : String(m.cropsPerRun);
    process.stdout.write(`| ${label} | ${m.stepSeconds[m.stepSeconds.length - 1].toFixed(1)} | ${m.loadedGiB.toFixed(2)} | ${m.peakGiB.toFixed(2)} |\n`);
  }
}

void main();
