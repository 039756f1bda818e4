/**
 * The SwinUNETR fine-tuning step side by side with MONAI/PyTorch's: ours writes the artifacts of
 * graph/models/swinunetr (SwinUNETR(use_v2=True) + DiceCE, upstream AdamW) for `preset` at roi 96 with 1 x 4 crops
 * and 14 classes, in parts of crops where `voco finetune` would run it so (cropsPerRunFor), and runs `Trainer.step`
 * on random crops (labels 0..13); then bench/torch/step.py swinunetr runs the
 * same step in PyTorch in a process of its own (see bench/torch-step.ts for what it needs). Medians of `steps` after
 * a warm-up step; peak resident memory of each process.
 * Run: MONAI_SRC=DIR npx tsx bench/swinunetr-step.bench.ts [preset=tiny] [threads=2] [steps=2]
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Rng } from '../common/rng';
import { SwinPreset } from '../graph/models/swinunetr-encoder';
import { writeSwinUnetrArtifacts } from '../graph/models/swinunetr/artifacts';
import { SWINUNETR_LEARNING_RATE, resolveSwinUnetrOptions } from '../graph/models/swinunetr/options';
import { Trainer } from '../runtime/session/trainer';
import { cropsPerRunFor } from '../runtime/finetune/config';
import { DEFAULT_FINETUNE_CONFIG } from '../cli/finetune';
import { runTorchStep, torchUnavailable } from './torch-step';
import { median } from './median';

const preset = (process.argv[2] ?? 'tiny') as SwinPreset;
const threads = Number(process.argv[3] ?? 2);
const steps = Number(process.argv[4] ?? 2);
const options = resolveSwinUnetrOptions({ preset, roi: 96, batchSize: 4, outChannels: 14 });
const cropsPerRun = cropsPerRunFor({ ...DEFAULT_FINETUNE_CONFIG, featureSize: options.featureSize, roi: 96, batchSize: 1, crops: 4 });
/** PyTorch's step runs only with this much free memory: its tiny roi-96 step peaked at 10.9 GiB, B holds 4x the channels. */
const TORCH_GIB = preset === 'tiny' ? 14 : 40;

async function ours(work: string): Promise<{ stepSeconds: number; peakGiB: number }> {
  writeSwinUnetrArtifacts(work, options, { cropsPerRun });
  const trainer = await Trainer.load(work, { threads, seed: 0 });
  const voxels = options.batchSize * options.roi ** 3;
  const rng = new Rng(0);
  const batch = {
    image: Float32Array.from({ length: voxels * options.inChannels }, () => rng.uniform()),
    label: Float32Array.from({ length: voxels }, () => rng.int(0, options.outChannels - 1)),
  };
  const times: number[] = [];
  for (let s = 0; s <= steps; s++) {
    const started = process.hrtime.bigint();
    await trainer.step(batch, { lr: SWINUNETR_LEARNING_RATE });
    if (s > 0) times.push(Number(process.hrtime.bigint() - started) / 1e9);
  }
  await trainer.release();
  return { stepSeconds: median(times), peakGiB: process.resourceUsage().maxRSS / 2 ** 20 };
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'swinunetr-step-bench-'));
  try {
    const load = () => os.loadavg().map((l) => l.toFixed(1)).join(', ');
    const parts = cropsPerRun < options.batchSize ? `, in parts of ${cropsPerRun} crop(s)` : '';
    const lines = [`# SwinUNETR fine-tuning step, ${preset} (feature size ${options.featureSize}), roi 96, 1 x 4 crops${parts}, 14 classes, ${threads} threads (load ${load()} at start)`, ''];
    const o = await ours(work);
    const why = torchUnavailable();
    const free = os.freemem() / 2 ** 30;
    const torch = why ? null : free < TORCH_GIB ? null : runTorchStep(['swinunetr', '--feature-size', String(options.featureSize), '--roi', '96', '--crops', '4', '--classes', '14', '--steps', String(steps)], threads);
    lines.push('| step | ours s | PyTorch s | PyTorch / ours | ours peak GiB | PyTorch peak GiB |', '|---|---|---|---|---|---|');
    lines.push(
      `| SwinUNETR ${preset}, roi 96, 4 crops | ${o.stepSeconds.toFixed(2)} | ${torch ? torch.stepSeconds.toFixed(2) : '-'} | ` +
        `${torch ? `${(torch.stepSeconds / o.stepSeconds).toFixed(2)}x` : '-'} | ${o.peakGiB.toFixed(2)} | ${torch ? torch.peakGiB.toFixed(2) : '-'} |`,
    );
    if (!torch) lines.push('', `PyTorch: skipped (${why ?? `${free.toFixed(1)} GiB free, it may need up to ${TORCH_GIB}`})`);
    lines.push('', `load ${load()} at the end`, '');
    process.stdout.write(lines.join('\n'));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

void main();
