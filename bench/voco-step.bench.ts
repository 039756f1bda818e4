/**
 * One VoCo training step's numbers (forward, loss, EMA, every gradient) for the tiny model (feature size 12,
 * roi 64, 1 + 9 crops) on the CPU, from the upstream reference fixture, computed as `voco grad` does: the backbone
 * in pieces of `cropsPerRun` crops, the heads and loss on all rows. Prints graph+session time, run time and the
 * process's peak resident memory.
 * The single training graph (runtime/session/trainer) computes the same in one run but holds every attention matrix of all
 * 10 crops at once: above 20 GiB with ONNX Runtime's memory arena, about 15 GiB without.
 * Run: npx tsx bench/voco-step.bench.ts [threads=2] [cropsPerRun=2]
 */
import * as fs from 'fs';
import * as path from 'path';
import { computeVocoGradients } from '../runtime/voco/grad';

const threads = Number(process.argv[2] ?? 2);
const cropsPerRun = Number(process.argv[3] ?? 2);
const FIXTURE = path.resolve(__dirname, '../../shared/reference/model/tiny12_r64_b1');

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(FIXTURE, 'weights.safetensors'))) {
    process.stdout.write(`skipped: no fixture at ${FIXTURE}\n`);
    return;
  }
  const cpuBefore = process.cpuUsage();
  const { timings } = await computeVocoGradients(path.join(FIXTURE, 'weights.safetensors'), path.join(FIXTURE, 'inputs.safetensors'), {
    threads,
    cropsPerRun,
  });
  const cpu = process.cpuUsage(cpuBefore);
  const peakGiB = process.resourceUsage().maxRSS / 2 ** 20;
  process.stdout.write(
    '| model | threads | crops per run | graphs + sessions s | step s | CPU s | peak RSS GiB |\n|---|---|---|---|---|---|---|\n' +
      `| tiny, roi 64, 10 crops | ${threads} | ${cropsPerRun} | ${timings.sessionSeconds.toFixed(1)} | ${timings.runSeconds.toFixed(1)} | ` +
      `${((cpu.user + cpu.system) / 1e6).toFixed(1)} | ${peakGiB.toFixed(1)} |\n`,
  );
}

void main();
