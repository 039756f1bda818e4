import type { Checkpoint } from '../../io/checkpoint';
import { PARAMETERS_GROUP } from '../../io/checkpoint';
import type { BatchFeeds, GradientResult, StepResult, Trainer } from '../../runtime/session/trainer';

/** What `averagedStep` did, for comparing with a two-rank run's first step. */
export interface AveragedStep {
  /** The parameters before the step. */
  readonly before: ReadonlyMap<string, Float32Array>;
  /** Rank 0's step (its loss) and rank 1's gradients (its loss). */
  readonly result: StepResult;
  readonly other: GradientResult;
  /** The largest |mean gradient - rank 0's own|: how far rank 0's gradient alone is from the one applied. */
  readonly ownGradientGap: number;
  /** The largest |mean gradient|. */
  readonly largestGradient: number;
}

/**
 * The data-parallel rule in one process: the gradients of rank 1's batch, then one optimizer step at `lr` on rank
 * 0's batch with its gradients replaced by the mean of the two, as the all-reduce of two ranks gives them.
 */
export async function averagedStep(trainer: Trainer, feeds: readonly [BatchFeeds, BatchFeeds], lr: number): Promise<AveragedStep> {
  const before = new Map(trainer.parameters.names().map((n) => [n, (trainer.parameters.get(n) as Float32Array).slice()]));
  const other = await trainer.computeGradients(feeds[1]);
  const rank1 = new Map([...other.gradients].map(([n, g]) => [n, g.slice()]));
  let ownGradientGap = 0;
  let largestGradient = 0;
  const result = await trainer.step(feeds[0], {
    lr,
    gradientHook: (gradients) => {
      for (const [name, g] of gradients) {
        const h = rank1.get(name)!;
        for (let i = 0; i < g.length; i++) {
          const mean = (g[i] + h[i]) / 2;
          ownGradientGap = Math.max(ownGradientGap, Math.abs(mean - g[i]));
          largestGradient = Math.max(largestGradient, Math.abs(mean));
          g[i] = mean;
        }
      }
    },
  });
  return { before, result, other, ownGradientGap, largestGradient };
}

/** The largest difference of a checkpoint's parameters from the trainer's (error), and of the trainer's from `before` (moved). */
export function parameterGap(saved: Checkpoint<unknown>, trainer: Trainer, before: ReadonlyMap<string, Float32Array>): { error: number; moved: number } {
  let moved = 0;
  let error = 0;
  for (const [name, t] of saved.groups.get(PARAMETERS_GROUP)!) {
    const got = t.data as Float32Array;
    const want = trainer.parameters.get(name) as Float32Array;
    const start = before.get(name)!;
    for (let i = 0; i < got.length; i++) {
      moved = Math.max(moved, Math.abs(want[i] - start[i]));
      error = Math.max(error, Math.abs(got[i] - want[i]));
    }
  }
  return { error, moved };
}
