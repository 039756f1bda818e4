/**
 * What a training loop calls to train data-parallel: one object per run that starts every rank from rank 0's
 * values, averages the gradients of each step (as a gradient hook, before clipping and the non-finite check, so
 * every rank takes the same decision), checks every N steps that the ranks still hold identical parameters, and
 * averages logged numbers. With a single process every call leaves the data as it is.
 */
import { ConstantData } from '../../graph/core/graph';
import { GradientHook, Gradients } from '../session/gradient-hooks';
import { Communicator, meanOverRanks, ReduceArray } from './communicator';
import { broadcastParameters, checkParametersAgree, GradientSync, GradientSyncOptions } from './gradient-sync';

export const DEFAULT_DIGEST_EVERY = 100;

export interface DataParallelOptions extends GradientSyncOptions {
  /** Compare the parameters' digest across ranks after every this many steps (default 100; 0: never). */
  readonly digestEvery?: number;
}

export class DataParallel {
  private readonly sync: GradientSync;
  private readonly digestEvery: number;
  private syncSeconds = 0;

  constructor(readonly comm: Communicator, options: DataParallelOptions = {}) {
    this.sync = new GradientSync(comm, options);
    this.digestEvery = options.digestEvery ?? DEFAULT_DIGEST_EVERY;
    if (!(Number.isInteger(this.digestEvery) && this.digestEvery >= 0)) {
      throw new RangeError(`digestEvery must be a whole number >= 0, got ${options.digestEvery}`);
    }
  }

  /** Rank 0 writes logs, metrics and checkpoints; the others only train. */
  get isRoot(): boolean {
    return this.comm.rank === 0;
  }

  /**
   * Overwrites the given values on every rank with rank 0's: parameters, non-trained state and optimizer moments,
   * in the same order on every rank. Call once, after initialising or resuming, before the first step.
   */
  syncInitialState(values: Iterable<ConstantData>): void {
    broadcastParameters(this.comm, floatArrays(values));
  }

  /** A gradient hook that averages the gradients over the ranks, then runs `then` (clipping, non-finite skip). */
  gradientHook(then?: GradientHook): GradientHook {
    return (gradients: Gradients) => {
      const started = performance.now();
      this.sync.average(gradients.values());
      this.syncSeconds = (performance.now() - started) / 1000;
      return then?.(gradients);
    };
  }

  /** Seconds the last gradient averaging took (waiting for the slowest rank included); 0 for a single process. */
  get lastSyncSeconds(): number {
    return this.syncSeconds;
  }

  /** After optimizer step `step` (1-based count): every `digestEvery` steps, throws if the ranks diverged. */
  afterStep(step: number, parameters: Iterable<ConstantData>): void {
    if (this.digestEvery > 0 && step % this.digestEvery === 0) checkParametersAgree(this.comm, floatArrays(parameters), step);
  }

  /** The mean over ranks of a few numbers (the step's loss and its parts, for the log). */
  mean(values: readonly number[]): number[] {
    return meanOverRanks(this.comm, values);
  }

  /**
   * True on every rank when `flag` is true on any rank: decisions that change the control flow (stop on Ctrl-C,
   * count a step as skipped) must be taken together, or the ranks fall out of step and wait for each other forever.
   */
  anyRank(flag: boolean): boolean {
    const value = new Float64Array([flag ? 1 : 0]);
    this.comm.allreduceMax(value);
    return value[0] > 0;
  }

  /** Frees the gradient buckets. */
  dispose(): void {
    this.sync.dispose();
  }
}

/** The floating-point arrays among `values` (integer buffers never change and are left out). */
export function floatArrays(values: Iterable<ConstantData>): ReduceArray[] {
  return [...values].filter((v): v is ReduceArray => v instanceof Float32Array || v instanceof Float64Array);
}
