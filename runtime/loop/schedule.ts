export type LrScheduleKind = 'warmup-cosine' | 'poly' | 'constant';

export interface LrSchedule {
  readonly kind: LrScheduleKind;
  readonly baseLr: number;
  readonly warmupSteps: number;
  readonly totalSteps: number;
}

/**
 * Learning rate for optimizer step `step` (0-based), as upstream's LambdaLR schedules give it: the scheduler is
 * stepped after each optimizer step, so step 0 runs with factor(0) (zero during a warm-up).
 * warmup-cosine is MONAI's WarmupCosineSchedule with cycles 0.5: linear from 0 over the warm-up, then a half
 * cosine to 0 at `totalSteps`. poly is (1 - step / totalSteps) ^ 0.9.
 */
export function learningRate(schedule: LrSchedule, step: number): number {
  return schedule.baseLr * lrFactor(schedule, step);
}

function lrFactor({ kind, warmupSteps, totalSteps }: LrSchedule, step: number): number {
  switch (kind) {
    case 'constant':
      return 1;
    case 'poly':
      return Math.max(0, 1 - step / totalSteps) ** 0.9;
    case 'warmup-cosine': {
      if (step < warmupSteps) return step / Math.max(1, warmupSteps);
      // clamped at 1: upstream's formula would rise again past totalSteps
      const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress)));
    }
  }
}
