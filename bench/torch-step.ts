/**
 * Runs bench/torch/step.py (one whole PyTorch training step: forward, backward, AdamW) in a process of its own, with
 * Debian's PyTorch (/usr/bin/python3; the `python3` on PATH may be another one without torch) and MONAI 1.3.2's
 * source tree named by MONAI_SRC. einops, which Debian lacks, is served by the stand-in beside step.py.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export const TORCH_PYTHON = '/usr/bin/python3';

export interface TorchStep {
  readonly stepSeconds: number;
  readonly steps: readonly number[];
  readonly peakGiB: number;
  readonly torch: string;
}

const MONAI_HINT =
  'set MONAI_SRC to a folder holding MONAI 1.3.2\'s `monai` package, e.g. `git clone --depth 1 --branch 1.3.2 ' +
  'https://github.com/Project-MONAI/MONAI DIR` or, from a mirror, `git -C MIRROR archive 1.3.2 monai | tar -x -C DIR`, then MONAI_SRC=DIR';

/** Why PyTorch's step cannot run here, or null when it can. */
export function torchUnavailable(): string | null {
  if (spawnSync(TORCH_PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' }).status !== 0) {
    return `${TORCH_PYTHON} cannot import torch (Debian: apt-get install python3-torch)`;
  }
  const src = process.env.MONAI_SRC;
  if (!src) return `MONAI_SRC is not set: ${MONAI_HINT}`;
  if (!fs.existsSync(path.join(src, 'monai', '__init__.py'))) return `MONAI_SRC=${src} has no monai/__init__.py: ${MONAI_HINT}`;
  return null;
}

/** One PyTorch step run: `args` as bench/torch/step.py takes them. Throws with PyTorch's last error line on failure. */
export function runTorchStep(args: readonly string[], threads: number): TorchStep {
  const script = path.join(__dirname, 'torch', 'step.py');
  const pythonPath = [process.env.MONAI_SRC!, path.dirname(script), process.env.PYTHONPATH].filter(Boolean).join(path.delimiter);
  const run = spawnSync(TORCH_PYTHON, [script, ...args, '--threads', String(threads)], {
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH: pythonPath, OMP_NUM_THREADS: String(threads), PYTHONWARNINGS: 'ignore' },
    maxBuffer: 1 << 24,
  });
  const last = run.stdout.trim().split('\n').pop() ?? '';
  if (run.status !== 0 || !last.startsWith('{')) throw new Error(`PyTorch step failed: ${(run.stderr || run.stdout).trim().split('\n').pop()}`);
  const r = JSON.parse(last) as { step_s: number; steps_s: number[]; peak_gib: number; torch: string };
  return { stepSeconds: r.step_s, steps: r.steps_s, peakGiB: r.peak_gib, torch: r.torch };
}
