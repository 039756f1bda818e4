/**
 * Preprocessing time per volume for a realistic CT (512 x 512 x 100 int16, 0.7 x 0.7 x 2.5 mm, LPS, .nii.gz):
 * NIfTI reading (gzip streaming) and each MONAI-equal step, for each family and the resize variant.
 * Run: npx tsx bench/preprocess.bench.ts [repeats]
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Rng } from '../common/rng';
import { loadVolume } from '../data/nifti/read';
import { writeNifti } from '../data/nifti/write';
import { Family, StepName, preprocessSteps } from '../data/pipeline';
import type { Volume } from '../data/volume';

function syntheticCt(): Volume {
  const shape: [number, number, number] = [512, 512, 100];
  const rng = new Rng(1);
  const data = new Float32Array(512 * 512 * 100);
  let i = 0;
  for (let x = 0; x < 512; x++) {
    for (let y = 0; y < 512; y++) {
      const r = Math.hypot((x - 256) / 220, (y - 240) / 170);
      const base = r > 1 ? -1000 : r > 0.93 ? 300 : Math.hypot(x - 300, y - 250) < 40 ? 60 : Math.hypot(x - 200, y - 230) < 50 ? -850 : 40;
      for (let z = 0; z < 100; z++) data[i++] = Math.round(base + 15 * rng.normal());
    }
  }
  return { data, shape, affine: [-0.7, 0, 0, 180, 0, -0.7, 0, 170, 0, 0, 2.5, -300, 0, 0, 0, 1] };
}

function main(): void {
  const repeats = Number(process.argv[2] ?? 3);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-bench-'));
  try {
    const file = path.join(dir, 'ct.nii.gz');
    writeNifti(file, syntheticCt(), { datatype: 'int16' });
    console.log(`input: 512x512x100 int16, ${(fs.statSync(file).size / 1e6).toFixed(1)} MB gzip; median of ${repeats} runs, ${os.cpus()[0].model}`);
    const loadTimes: number[] = [];
    let volume: Volume | null = null;
    for (let r = 0; r < repeats; r++) {
      const t = performance.now();
      volume = loadVolume(file).volume;
      loadTimes.push(performance.now() - t);
    }
    console.log(`loadVolume (.nii.gz): ${median(loadTimes).toFixed(0)} ms`);
    for (const [family, resize] of [['abdomen', false], ['chest', false], ['headneck', true]] as [Family, boolean][]) {
      const steps = new Map<StepName, number[]>();
      const totals: number[] = [];
      let shape = '';
      for (let r = 0; r < repeats; r++) {
        let t = performance.now();
        const start = t;
        const out = preprocessSteps(volume as Volume, family, { resize }, (step) => {
          const now = performance.now();
          steps.set(step, [...(steps.get(step) ?? []), now - t]);
          t = now;
        });
        totals.push(performance.now() - start);
        shape = out.shape.join('x');
      }
      const detail = [...steps].map(([s, ts]) => `${s} ${median(ts).toFixed(0)}`).join(', ');
      console.log(`${family}${resize ? ' +resize' : ''}: ${median(totals).toFixed(0)} ms -> ${shape} (${detail} ms)`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

main();
