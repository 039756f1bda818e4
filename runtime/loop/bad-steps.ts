import { UserError } from '../../common/user-error';
import type { Log } from './task';

export class TrainingDivergedError extends UserError {}

/** Counts steps skipped for a non-finite loss or gradient; stops the run after `limit` of them in a row. */
export class BadStepPolicy {
  private inARow = 0;

  constructor(
    private readonly limit: number,
    private readonly log: Log,
  ) {}

  /** A step whose loss or gradients were not finite (`step` counted from 1): warns, and throws at the limit. */
  skipped(step: number, loss: number): void {
    this.inARow++;
    this.log(`warning: step ${step}: loss ${loss} or its gradients are not finite; step skipped (${this.inARow} in a row)`);
    if (this.inARow >= this.limit) {
      throw new TrainingDivergedError(
        `${this.inARow} steps in a row had a non-finite loss or gradient (last at step ${step}); stopping. ` +
          `Lower --lr or enable --grad-clip, then --resume from the last checkpoint.`,
      );
    }
  }

  taken(): void {
    this.inARow = 0;
  }
}
