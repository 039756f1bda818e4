/**
 * Interleaved comparison of VoCo training steps (tiny, roi 64, batch 1, sw batch 1: 10 crops) built by different
 * versions of the code: `write DIR [cropsPerRun=2]` writes the artifacts with this checkout's graph code (the step
 * in pieces of `cropsPerRun` crops; 0: the single training model); `run ROUNDS DIR...` loads every folder's trainer
 * in this process and runs their steps in turn (A, B, A, B, ...) on one loader batch, so that a shared machine's load
 * falls on all of them alike; it prints each step with the load average, then the medians. Peak memory is that of all
 * folders together: for one folder's peak, run it alone.
 * Baseline from another commit: copy this file into that checkout's bench/ and run `write` there.
 * Run: npx tsx bench/voco-step-ab.bench.ts write /tmp/A 2 && npx tsx bench/voco-step-ab.bench.ts run 3 /tmp/A /tmp/B
 */
import * as os from 'os';
import * as path from 'path';
import { createBatchLoader } from '../data/loader/loader';
import { WHOLE_BATCH } from '../data/loader/share';
import { resolveVocoOptions } from '../graph/models/voco/options';
import { buildVocoGraph } from '../graph/models/voco/model';
import { writeVocoArtifacts } from '../graph/models/voco/artifacts';
import { resolveSources } from '../runtime/voco/data-sources';
import { stepFeeds } from '../runtime/voco/task';
import { Trainer } from '../runtime/session/trainer';
import { median } from './median';

const options = resolveVocoOptions({ preset: 'tiny', roi: 64, batchSize: 1, swBatchSize: 1 });
const THREADS = 2;

async function run(rounds: number, dirs: readonly string[]): Promise<void> {
  const vg = buildVocoGraph(options, 'train');
  const work = path.join(os.tmpdir(), 'voco-step-ab');
  const loader = createBatchLoader({
    sources: resolveSources(undefined, work, 2, () => undefined),
    cacheDir: path.join(work, 'volumes'),
    seed: 0,
    batchSize: options.batchSize,
    swBatchSize: options.swBatchSize,
    voco: { roi: options.roi },
    workers: 0,
  });
  const batch = await loader.next();
  await loader.close();
  const trainers = [];
  for (const d of dirs) trainers.push(await Trainer.load(d, { threads: THREADS, seed: 0 }));
  const times: number[][] = dirs.map(() => []);
  for (let r = 0; r <= rounds; r++) {
    for (const [i, trainer] of trainers.entries()) {
      const load = os.loadavg()[0].toFixed(1);
      const started = process.hrtime.bigint();
      const result = await trainer.step(stepFeeds(vg, batch, 0, r, WHOLE_BATCH), { lr: 1e-4 });
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (r > 0) times[i].push(seconds);
      process.stdout.write(`round ${r}${r === 0 ? ' (warm-up)' : ''} ${dirs[i]}: ${seconds.toFixed(2)} s, loss ${result.loss}, load ${load}\n`);
    }
  }
  for (const [i, d] of dirs.entries()) process.stdout.write(`${d}: median ${median(times[i]).toFixed(2)} s of [${times[i].map((t) => t.toFixed(2)).join(', ')}]\n`);
  process.stdout.write(`peak RSS of all ${dirs.length} together ${(process.resourceUsage().maxRSS / 2 ** 20).toFixed(2)} GiB, ${THREADS} threads\n`);
  // Released sessions write their profiles when VOCO_ORT_PROFILE is set.
  await Promise.all(trainers.map((t) => t.release()));
}

async function main(): Promise<void> {
  const [mode, ...rest] = process.argv.slice(2);
  if (mode === 'write' && rest[0]) {
    writeVocoArtifacts(rest[0], options, { optimizer: { kind: 'adamw', weightDecay: 1e-2 }, encoderBatch: 1, cropsPerRun: Number(rest[1] ?? 2) });
  } else if (mode === 'run' && rest.length >= 2) {
    await run(Number(rest[0]), rest.slice(1));
  } else {
    process.stderr.write('usage: voco-step-ab.bench.ts write DIR [cropsPerRun] | run ROUNDS DIR...\n');
    process.exitCode = 2;
  }
}

void main();
