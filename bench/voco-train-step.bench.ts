/**
 * One VoCo pre-training step as `npm run train` takes it, on the CPU: the training graph (EMA teacher, forward,
 * loss, every gradient) and the optimizer graph (AdamW) through runtime/session/trainer.ts, fed by the real batch loader
 * (one worker thread) on the built-in phantom CTs. For the tiny model (feature size 12, roi 64, batch 1, sw batch 1:
 * 10 crops) it reports the median over `steps` steps after a warm-up step of the step time, the time spent waiting
 * for the loader and its share, steps/s, crops/s and the process's peak resident memory. Preset B (feature size
 * 48) runs one step only where the estimate below says it fits in ~5 minutes and in the free memory. Upstream
 * PyTorch (Debian's python3-torch, when /usr/bin/python3 imports it) times the same step's dominant workload, see
 * `torchWorkload`.
 * Run: npx tsx bench/voco-train-step.bench.ts [threads=2] [steps=3]
 */
import { spawnSync } from 'child_process';
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

const threads = Number(process.argv[2] ?? 2);
const steps = Number(process.argv[3] ?? 3);
const SEED = 0;
/** Rough cost of a B step relative to tiny: attention is the same size, channel work grows 4-16x. */
const B_OVER_TINY_TIME = 6;
const B_OVER_TINY_MEMORY = 2;

interface StepNumbers {
  readonly preset: VocoPreset;
  readonly crops: number;
  readonly timed: number;
  readonly stepSeconds: number;
  readonly dataSeconds: number;
  readonly peakGiB: number;
  readonly buildSeconds: number;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const seconds = (from: bigint): number => Number(process.hrtime.bigint() - from) / 1e9;
const peakGiB = (): number => process.resourceUsage().maxRSS / 2 ** 20;

/** Builds the artifacts, then runs 1 + `timed` steps on loader batches; the first is the warm-up. */
async function trainSteps(preset: VocoPreset, timed: number, work: string): Promise<StepNumbers> {
  const options = resolveVocoOptions({ preset, roi: 64, batchSize: 1, swBatchSize: 1 });
  const dir = path.join(work, `artifacts-${preset}`);
  const built = process.hrtime.bigint();
  writeVocoArtifacts(dir, options, { optimizer: { kind: 'adamw', weightDecay: 1e-5 }, encoderBatch: 1 });
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
  }
  const crops = options.batchSize * (options.swBatchSize + options.baseCrops);
  return { preset, crops, timed, stepSeconds: median(stepTimes), dataSeconds: median(waits), peakGiB: peakGiB(), buildSeconds };
}

/**
 * PyTorch (no MONAI here) forward and backward of the workload that dominates the step: the attention of the eight
 * Swin blocks at the tiny roi-64 shapes (q k^T, relative-position bias and shifted-window mask added, softmax,
 * times v: [windows x crops, heads, 343, 343] scores) and encoder1 (conv 3x3x3 1->12, instance norm, leaky ReLU,
 * conv 3x3x3 12->12, instance norm, 1x1x1 residual conv, on 10 crops of 64^3). Median of 3 after a warm-up.
 */
function torchWorkload(): string {
  return `
import time, torch, torch.nn.functional as F
torch.set_num_threads(${threads})
torch.manual_seed(0)
crops, n = 10, 343
stages = [(125, 3, 12), (27, 6, 24), (8, 12, 48), (1, 24, 96)]  # windows per crop, heads, channels
def attention(windows, heads, dim, shifted):
    tokens = n if windows > 1 else 64
    q = torch.randn(crops * windows, heads, tokens, dim // heads, requires_grad=True)
    k = torch.randn_like(q, requires_grad=True); v = torch.randn_like(q, requires_grad=True)
    bias = torch.randn(heads, tokens, tokens, requires_grad=True)
    s = (q * (dim // heads) ** -0.5) @ k.transpose(-2, -1) + bias
    if shifted:
        mask = torch.where(torch.rand(windows, 1, tokens, tokens) < 0.5, 0.0, -100.0)
        s = (s.view(crops, windows, heads, tokens, tokens) + mask).view(-1, heads, tokens, tokens)
    return (s.softmax(-1) @ v).sum()
def encoder1():
    x = torch.randn(crops, 1, 64, 64, 64)
    w1 = torch.randn(12, 1, 3, 3, 3, requires_grad=True); w2 = torch.randn(12, 12, 3, 3, 3, requires_grad=True)
    w3 = torch.randn(12, 1, 1, 1, 1, requires_grad=True)
    h = F.leaky_relu(F.instance_norm(F.conv3d(x, w1, padding=1)), 0.01)
    h = F.instance_norm(F.conv3d(h, w2, padding=1)) + F.instance_norm(F.conv3d(x, w3))
    return F.leaky_relu(h, 0.01).sum()
def step():
    loss = encoder1()
    for windows, heads, dim in stages:
        loss = loss + attention(windows, heads, dim, False) + attention(windows, heads, dim, windows > 1)
    loss.backward()
step()
times = []
for _ in range(3):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
import resource
print(sorted(times)[1], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, torch.__version__)
`;
}

function runTorch(work: string): string {
  const python = '/usr/bin/python3';
  const probe = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return `PyTorch: skipped (${python} cannot import torch; apt-get install python3-torch to compare)`;
  const script = path.join(work, 'voco_workload.py');
  fs.writeFileSync(script, torchWorkload());
  const run = spawnSync(python, [script], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: String(threads) } });
  if (run.status !== 0) return `PyTorch: failed (${(run.stderr || '').trim().split('\n').pop()})`;
  const [time, gib, version] = run.stdout.trim().split(/\s+/);
  return (
    `PyTorch ${version} (${threads} threads), forward + backward of the step's dominant workload only (the eight ` +
    `window attentions at tiny roi-64 shapes and encoder1 on 10 crops of 64^3; no MLPs, norms or other convs): ` +
    `${Number(time).toFixed(1)} s median of 3, peak RSS ${Number(gib).toFixed(1)} GiB`
  );
}

function row(r: StepNumbers): string {
  const share = (100 * r.dataSeconds) / r.stepSeconds;
  return (
    `| ${r.preset} | ${r.crops} | ${threads} | ${r.timed} | ${r.buildSeconds.toFixed(1)} | ${r.stepSeconds.toFixed(2)} | ` +
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
      '| preset | crops | threads | timed steps | artifacts + sessions s | step s (median) | data wait s (share) | steps/s | crops/s | peak RSS GiB |',
      '|---|---|---|---|---|---|---|---|---|---|',
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
    lines.push('', runTorch(work), '');
    process.stdout.write(lines.join('\n'));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

void main();
