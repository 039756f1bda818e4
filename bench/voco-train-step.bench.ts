/**
 * One VoCo pre-training step as `npm run train` takes it, on the CPU: the training graph (EMA teacher, forward,
 * loss, every gradient; in pieces of crops where `npm run train` would run it so, see cropsPerRunFor) and the
 * optimizer graph (AdamW) through runtime/session/trainer.ts, fed by the real batch loader
 * (one worker thread) on the built-in phantom CTs. For the tiny model (feature size 12, roi 64, batch 1, sw batch 1:
 * 10 crops) it reports the median over `steps` steps after a warm-up step of the step time, the time spent waiting
 * for the loader and its share, steps/s, crops/s and the process's peak resident memory. Preset B (feature size
 * 48) runs one step only where the estimate below says it fits in ~5 minutes and in the free memory. Then upstream's
 * whole step in PyTorch (bench/torch/step.py: Large-Scale-Medical's VoCoHead on MONAI 1.3.2's SwinTransformer,
 * forward, backward, AdamW; Debian's python3-torch and MONAI_SRC, see bench/torch-step.ts) on the same shapes, in a
 * process of its own, and the two side by side with their peaks.
 * Run: MONAI_SRC=DIR npx tsx bench/voco-train-step.bench.ts [threads=2] [steps=3]
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createBatchLoader } from '../data/loader/loader';
import { WHOLE_BATCH } from '../data/loader/share';
import { VocoPreset, resolveVocoOptions } from '../graph/models/voco/options';
import { buildVocoGraph } from '../graph/models/voco/model';
import { writeVocoArtifacts } from '../graph/models/voco/artifacts';
import { resolveSources } from '../runtime/voco/data-sources';
import { stepFeeds } from '../runtime/voco/task';
import { Trainer } from '../runtime/session/trainer';
import { cropsPerRunFor } from '../runtime/voco/config';
import { DEFAULT_TRAIN_CONFIG } from '../cli/train';
import { runTorchStep, torchUnavailable } from './torch-step';
import { median } from './median';

const threads = Number(process.argv[2] ?? 2);
const steps = Number(process.argv[3] ?? 3);
const SEED = 0;
/** Rough cost of a B step relative to tiny: attention scores are as many, channel work grows 4-16x. */
const B_OVER_TINY_TIME = 6;
const B_OVER_TINY_MEMORY = 3;
/** PyTorch's tiny roi-64 VoCo step peaks at about 9.2 GiB; it runs only with this much free. */
const TORCH_VOCO_GIB = 14;

interface StepNumbers {
  readonly preset: VocoPreset;
  readonly crops: number;
  /** Crops per backbone run; 0: the single training model. */
  readonly cropsPerRun: number;
  readonly timed: number;
  readonly stepSeconds: number;
  readonly dataSeconds: number;
  readonly peakGiB: number;
  readonly buildSeconds: number;
}

const seconds = (from: bigint): number => Number(process.hrtime.bigint() - from) / 1e9;
const peakGiB = (): number => process.resourceUsage().maxRSS / 2 ** 20;

/** Builds the artifacts, then runs 1 + `timed` steps on loader batches; the first is the warm-up. */
async function trainSteps(preset: VocoPreset, timed: number, work: string): Promise<StepNumbers> {
  const options = resolveVocoOptions({ preset, roi: 64, batchSize: 1, swBatchSize: 1 });
  const cropsPerRun = cropsPerRunFor({ ...DEFAULT_TRAIN_CONFIG, featureSize: options.featureSize, roi: 64, batchSize: 1, swBatchSize: 1 });
  const dir = path.join(work, `artifacts-${preset}`);
  const built = process.hrtime.bigint();
  writeVocoArtifacts(dir, options, { optimizer: { kind: 'adamw', weightDecay: 1e-5 }, encoderBatch: 1, cropsPerRun });
  const vg = buildVocoGraph(options, 'train');
  const trainer = await Trainer.load(dir, { threads, seed: SEED });
  const buildSeconds = seconds(built);
  const loader = createBatchLoader({
    sources: resolveSources(undefined, work, 2, () => undefined),
    cacheDir: path.join(work, 'volumes'),
    seed: SEED,
    batchSize: options.batchSize,
    swBatchSize: options.swBatchSize,
    voco: { roi: options.roi },
    workers: 1,
  });
  const stepTimes: number[] = [];
  const waits: number[] = [];
  try {
    for (let step = 0; step <= timed; step++) {
      const started = process.hrtime.bigint();
      const batch = await loader.next();
      const wait = seconds(started);
      await trainer.step(stepFeeds(vg, batch, SEED, step, WHOLE_BATCH), { lr: 1e-4 });
      if (step > 0) {
        stepTimes.push(seconds(started));
        waits.push(wait);
      }
    }
  } finally {
    await loader.close();
    // Its sessions' arenas would otherwise still be held while the next preset runs.
    await trainer.release();
  }
  const crops = options.batchSize * (options.swBatchSize + options.baseCrops);
  return { preset, crops, cropsPerRun, timed, stepSeconds: median(stepTimes), dataSeconds: median(waits), peakGiB: peakGiB(), buildSeconds };
}

/** Upstream's whole step in PyTorch (bench/torch/step.py), or why it was not run. */
function torchSteps(ours: StepNumbers): string[] {
  const why = torchUnavailable();
  if (why) return [`PyTorch: skipped (${why})`];
  const freeGiB = os.freemem() / 2 ** 30;
  const lines = [
    '| step | ours s | PyTorch s | PyTorch / ours | ours peak GiB | PyTorch peak GiB |',
    '|---|---|---|---|---|---|',
  ];
  // PyTorch keeps every activation of the 10 crops: about 9.2 GiB at tiny roi 64.
  if (freeGiB < TORCH_VOCO_GIB) return [`PyTorch VoCo step: skipped (${freeGiB.toFixed(1)} GiB free, it needs about ${TORCH_VOCO_GIB})`];
  const t = runTorchStep(['voco', '--feature-size', '12', '--roi', '64', '--steps', String(Math.max(1, steps - 1))], threads);
  lines.push(
    `| VoCo tiny, roi 64, 10 crops (PyTorch ${t.torch}, median of ${t.steps.length}) | ${ours.stepSeconds.toFixed(2)} | ${t.stepSeconds.toFixed(2)} | ` +
      `${(t.stepSeconds / ours.stepSeconds).toFixed(2)}x | ${ours.peakGiB.toFixed(2)} | ${t.peakGiB.toFixed(2)} |`,
  );
  return lines;
}

function row(r: StepNumbers): string {
  const share = (100 * r.dataSeconds) / r.stepSeconds;
  return (
    `| ${r.preset} | ${r.crops} | ${r.cropsPerRun || 'one model'} | ${threads} | ${r.timed} | ${r.buildSeconds.toFixed(1)} | ${r.stepSeconds.toFixed(2)} | ` +
    `${r.dataSeconds.toFixed(3)} (${share.toFixed(1)} %) | ${(1 / r.stepSeconds).toFixed(3)} | ${(r.crops / r.stepSeconds).toFixed(2)} | ${r.peakGiB.toFixed(1)} |`
  );
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-step-bench-'));
  try {
    const load = os.loadavg().map((l) => l.toFixed(1)).join(', ');
    const tiny = await trainSteps('tiny', steps, work);
    const lines = [
      `# VoCo training step (CPU, ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, load ${load} at start)`,
      '',
      '| preset | crops | crops per run | threads | timed steps | artifacts + sessions s | step s (median) | data wait s (share) | steps/s | crops/s | peak RSS GiB |',
      '|---|---|---|---|---|---|---|---|---|---|---|',
      row(tiny),
    ];
    const estimate = tiny.stepSeconds * B_OVER_TINY_TIME;
    const memory = tiny.peakGiB * B_OVER_TINY_MEMORY;
    const freeGiB = os.freemem() / 2 ** 30;
    if (estimate <= 300 && memory <= freeGiB) lines.push(row(await trainSteps('B', 1, work)));
    else {
      lines.push(
        '',
        `B: skipped (estimated ${estimate.toFixed(0)} s and ${memory.toFixed(0)} GiB for one step from tiny's numbers, ` +
          `against a 300 s budget and ${freeGiB.toFixed(0)} GiB free)`,
      );
    }
    lines.push('', `Whole steps, forward + backward + AdamW, ${threads} threads, load ${os.loadavg().map((l) => l.toFixed(1)).join(', ')} before PyTorch:`, '', ...torchSteps(tiny), '');
    process.stdout.write(lines.join('\n'));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

void main();
