/**
 * What a training task gives the loop (runtime/loop/loop.ts). The loop owns everything every task does alike:
 * steps, learning-rate schedule, gradient clipping and the bad-step policy, checkpoints and exact resume,
 * data-parallel ranks, metrics, TensorBoard, the loss plot, the progress line, the logdir lock and a full disk.
 * A task owns what is its own: its artifacts, its batches, the inputs and outputs of a step, its evaluation and
 * its exports. VoCo pre-training (runtime/voco/task.ts) is one; see docs/architecture.md.
 */
import type { RankShare } from '../../data/loader/share';
import type { BatchFeeds, LoadOptions, StepResult, Trainer } from '../session/trainer';
import type { LrScheduleKind } from './schedule';

/** The settings the loop reads; a task's config has them besides whatever else decides its run. */
export interface LoopSettings {
  readonly logdir: string;
  readonly maxSteps: number;
  readonly checkpointEvery: number;
  readonly keepCheckpoints: number;
  /** Consecutive steps with a non-finite loss or gradient after which the run stops. */
  readonly maxBadSteps: number;
  readonly gradClip: boolean;
  readonly maxGradNorm: number;
  readonly lrSchedule: LrScheduleKind;
  readonly lr: number;
  readonly warmupSteps: number;
}

/** A number a task reports each step or evaluation: its key in metrics.jsonl and its TensorBoard tag. */
export interface Metric {
  readonly key: string;
  readonly tag: string;
  /** Its name on the progress line, beside the loss (step metrics other than the loss only). */
  readonly progress?: string;
}

/** A line of `loss.svg`: the metrics.jsonl key it plots. */
export interface PlotSeries {
  readonly key: string;
  readonly label: string;
  readonly color: string;
  /** Smoothing of the plotted line (see observe/loss-plot.ts); the plot's default when omitted. */
  readonly smoothing?: number;
}

/** A picture beside `loss.svg` (e.g. `dice.svg`): its file name in the logdir, its title and its lines. */
export interface Chart {
  readonly file: string;
  readonly title: string;
  readonly series: readonly PlotSeries[];
}

/** A batch and where the task's batch stream stands after it (saved in checkpoints: a resume continues there). */
export interface PositionedBatch<Cursor> {
  readonly cursor: Cursor;
}

export interface BatchSource<Batch> {
  next(): Promise<Batch>;
  close(): Promise<void>;
  /** Distinct bad input files skipped so far, for the run summary. */
  readonly badFiles: readonly unknown[];
}

/** A periodic measurement on rank 0 (VoCo: the held-out loss; fine-tuning: validation Dice). */
export interface Evaluation {
  /** Every this many steps, at the start of a fresh run and at the end. */
  readonly every: number;
  readonly metrics: readonly Metric[];
  /**
   * Keep `best.ckpt` in the logdir: the parameters of the evaluation whose metric `key` (one of `metrics`) was best
   * in `direction` so far, with its value and step in the checkpoint's metadata.
   */
  readonly best?: { readonly key: string; readonly direction: 'max' | 'min' };
  /** The values of `metrics`, in order, for the trainer's current parameters. */
  measure(trainer: Trainer): Promise<readonly number[]>;
}

export type Log = (line: string) => void;

export interface TrainingTask<Config extends LoopSettings, Cursor, Batch extends PositionedBatch<Cursor>> {
  /** Stored in every checkpoint; `--resume` continues with it. */
  readonly config: Config;
  /** Title of `loss.svg`. */
  readonly title: string;
  /** Items (VoCo: crops) one rank processes per step, for the progress line's rate. */
  readonly itemsPerStep: number;
  /** How the trainer opens the artifacts: provider, device, threads, seed of the initial values. */
  readonly session: LoadOptions;
  /** What `measure` returns, in order; the first is the loss that decides whether a step was finite. */
  readonly stepMetrics: readonly Metric[];
  readonly plot: readonly PlotSeries[];
  /** Further pictures, redrawn with `loss.svg` at each checkpoint. */
  readonly charts?: readonly Chart[];

  /** The data-parallel line's tail: what one rank and all ranks process per step. */
  describeRanks(ranks: number): string;
  /** Refuses (one line) to resume from a checkpoint whose config built other graphs or optimizer. */
  checkResume(saved: Config): void;
  /** Writes or finds the artifacts and the data the run needs; returns the artifacts folder. Once per file system. */
  prepare(log: Log): string;
  /** A fresh run's starting values on rank 0 (VoCo: --init-from); the other ranks receive them. */
  initialise?(trainer: Trainer, log: Log): void;
  /** This rank's batches from `start` (undefined: the beginning). */
  openBatches(start: Cursor | undefined, share: RankShare, warn: Log): BatchSource<Batch>;
  /** The evaluation of this run, drawn once on rank 0; undefined when it has none. */
  openEvaluation?(): Promise<Evaluation | undefined>;
  /** The training graph's inputs for `batch` at `step` (0-based) besides parameters: the batch, random masks. */
  feeds(batch: Batch, step: number, share: RankShare): BatchFeeds;
  /** The values of `stepMetrics` from this rank's step result (the loop averages them over the ranks). */
  measure(result: StepResult): readonly number[];
  /** After a step the optimizer took: adopt outputs into the parameters (VoCo: the EMA teacher). */
  afterStep?(trainer: Trainer, result: StepResult): void;
  /** Writes the exports of a completed run into the logdir; returns them by label (`encoder`: its file). */
  exports(trainer: Trainer): Readonly<Record<string, string>>;
}
