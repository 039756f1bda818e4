/**
 * The training loop every task runs through (the task supplies graphs, batches, metrics, evaluation and exports;
 * see task.ts). Each step: the task's batch and feeds, the training graph (or its pieces), the gradient hooks
 * (data-parallel averaging, the non-finite check, clipping), the optimizer graph at the scheduled learning rate;
 * a step with a non-finite loss or gradient is skipped and counted. Checkpoints every N steps, at the end and on
 * a stop signal; `--resume` continues exactly (same batches, masks and losses as an unbroken run).
 *
 * With `options.comm` of several ranks the run is data-parallel (docs/distributed.md): every rank starts from rank
 * 0's values, reads its share of each global batch, and averages the gradients before clipping and the non-finite
 * check, so all ranks take the same decisions and keep identical parameters. Only rank 0 reads the checkpoint it
 * resumes from, holds the logdir lock and writes logs, metrics, checkpoints and exports.
 */
import * as fs from 'node:fs';
import { Checkpoint, latestCheckpoint } from '../../io/checkpoint';
import { RankShare } from '../../data/loader/share';
import { broadcastJson, Communicator, SingleProcess } from '../distributed/communicator';
import { DataParallel } from '../distributed/data-parallel';
import { inTurnPerFileSystem } from '../distributed/in-turn';
import { gradientPolicy } from '../session/gradient-hooks';
import { Trainer, loadArtifacts } from '../session/trainer';
import { BadStepPolicy } from './bad-steps';
import { DiskFullError, isDiskFull } from './disk-full';
import { LogdirLock } from './logdir-lock';
import { RunRecords } from './records';
import { BestEvaluation, ResumePoint, RunState, checkpointDir, restoreRun, resumeCheckpoint, resumePoint, saveBest, saveRun } from './run-state';
import { learningRate } from './schedule';
import type { BatchSource, Evaluation, Log, LoopSettings, PositionedBatch, TrainingTask } from './task';

export interface LoopOptions {
  /** Resume from this checkpoint, or from the newest one in the logdir when true. */
  readonly resume?: string | true;
  /** Stop cleanly (checkpoint, exports skipped) once this is aborted; Ctrl-C in the CLI. */
  readonly signal?: AbortSignal;
  readonly log?: Log;
  /** Show the progress line (default true). */
  readonly progress?: boolean;
  /** The ranks of a data-parallel run (default: this process alone); see docs/distributed.md. */
  readonly comm?: Communicator;
  /** Data-parallel: compare the ranks' parameter digests every N steps (default 100; 0: never). */
  readonly digestEvery?: number;
}

export interface LoopSummary {
  readonly steps: number;
  readonly skippedSteps: number;
  readonly badFiles: number;
  readonly checkpoint: string;
  /** The task's exports by label; none when the run stopped early. */
  readonly exports: Readonly<Record<string, string>>;
  readonly interrupted: boolean;
}

/** Trains `task` from scratch or from `options.resume` up to its `maxSteps`, or until `options.signal` stops it. */
export async function runTraining<Config extends LoopSettings, Cursor, Batch extends PositionedBatch<Cursor>>(
  task: TrainingTask<Config, Cursor, Batch>,
  options: LoopOptions = {},
): Promise<LoopSummary> {
  const comm = options.comm ?? new SingleProcess();
  const print = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const log = comm.rank === 0 ? print : () => undefined;
  const { logdir } = task.config;
  const resumed = comm.rank === 0 && options.resume ? resumeCheckpoint<Config, Cursor>(logdir, options.resume) : undefined;
  if (resumed) task.checkResume(resumed.meta.config);
  const resumeAt = options.resume ? broadcastJson<ResumePoint<Cursor> | undefined>(comm, resumed && resumePoint(resumed)) : undefined;
  fs.mkdirSync(logdir, { recursive: true });
  const lock = comm.rank === 0 ? LogdirLock.acquire(logdir, log) : undefined;
  try {
    const run = await TrainingRun.open(task, { ...options, comm, log: print }, resumed, resumeAt);
    try {
      await run.loop(options.signal);
    } finally {
      await run.close();
    }
    return run.finish();
  } finally {
    lock?.release();
  }
}

class TrainingRun<Config extends LoopSettings, Cursor, Batch extends PositionedBatch<Cursor>> {
  private step: number;
  private skippedSteps: number;
  private cursor: Cursor | undefined;
  private best: BestEvaluation | undefined;
  private lastCheckpoint = '';
  /** What the run was doing, for the one line a full disk stops it with. */
  private doing = 'starting';

  private constructor(
    private readonly task: TrainingTask<Config, Cursor, Batch>,
    private readonly trainer: Trainer,
    private readonly dp: DataParallel,
    private readonly share: RankShare,
    private readonly log: Log,
    private readonly batches: BatchSource<Batch>,
    private readonly records: RunRecords | undefined,
    private readonly evaluation: Evaluation | undefined,
    resumeAt: ResumePoint<Cursor> | undefined,
  ) {
    this.step = resumeAt?.step ?? 0;
    this.skippedSteps = resumeAt?.skippedSteps ?? 0;
    this.cursor = resumeAt?.cursor;
    this.best = resumeAt?.best;
  }

  static async open<C extends LoopSettings, K, B extends PositionedBatch<K>>(
    task: TrainingTask<C, K, B>,
    options: LoopOptions & { comm: Communicator; log: Log },
    resumed: Checkpoint<RunState<C, K>> | undefined,
    resumeAt: ResumePoint<K> | undefined,
  ): Promise<TrainingRun<C, K, B>> {
    const { comm, config } = { comm: options.comm, config: task.config };
    const dp = new DataParallel(comm, { digestEvery: options.digestEvery });
    const log = dp.isRoot ? options.log : () => undefined;
    // Bad files are seen by the rank that reads them: every rank reports its own.
    const warn = (line: string) => options.log(comm.size > 1 ? `warning: rank ${comm.rank}: ${line}` : `warning: ${line}`);
    const share: RankShare = { rank: comm.rank, size: comm.size };
    const trainer = await loadArtifacts(inTurnPerFileSystem(comm, () => task.prepare(log)), task.session);
    if (resumed) restoreRun(trainer, resumed);
    else if (dp.isRoot) task.initialise?.(trainer, log);
    if (comm.size > 1) {
      dp.syncInitialState([...parameterValues(trainer), ...trainer.optimizerState.snapshot().values()]);
      log(`data-parallel over ${comm.size} ranks: ${task.describeRanks(comm.size)}`);
    }
    if (resumeAt) {
      trainer.stepCount = resumeAt.optimizerSteps;
      log(`resuming from step ${resumeAt.step} (${resumeAt.optimizerSteps} optimizer steps)`);
    }
    const records = dp.isRoot ? new RunRecords(config.logdir, task.title, task.stepMetrics, task.plot, resumeAt?.step, task.charts) : undefined;
    const batches = task.openBatches(resumeAt?.cursor, share, warn);
    const evaluation = dp.isRoot ? await task.openEvaluation?.() : undefined;
    const run = new TrainingRun(task, trainer, dp, share, log, batches, records, evaluation, resumeAt);
    if (run.step === 0) await run.evaluate();
    if (options.progress !== false) records?.showProgress(config.maxSteps, comm.size * task.itemsPerStep, run.step);
    return run;
  }

  /** Steps until `maxSteps` or a stop; the last step's checkpoint is written either way. */
  async loop(signal: AbortSignal | undefined): Promise<void> {
    const { config } = this.task;
    const schedule = { kind: config.lrSchedule, baseLr: config.lr, warmupSteps: config.warmupSteps, totalSteps: config.maxSteps };
    const badSteps = new BadStepPolicy(config.maxBadSteps, this.log);
    try {
      // Stopping is decided together: a rank that left the loop alone would leave the others waiting for it.
      while (this.step < config.maxSteps && !this.dp.anyRank(signal?.aborted ?? false)) {
        const started = Date.now();
        this.doing = 'the volume cache';
        const batch = await this.batches.next();
        const dataWait = (Date.now() - started) / 1000;
        const lr = learningRate(schedule, this.step);
        let gradNorm: number | undefined;
        const policy = gradientPolicy({ maxNorm: config.gradClip ? config.maxGradNorm : undefined, onNorm: (n) => (gradNorm = n) });
        const feeds = this.task.feeds(batch, this.step, this.share);
        const result = await this.trainer.step(feeds, { lr, gradientHook: this.dp.gradientHook(policy) });
        // The mean over ranks, before the decision below, so that every rank decides alike.
        const values = this.dp.mean([...this.task.measure(result)]);
        this.step++;
        this.cursor = batch.cursor;
        if (result.skipped || !Number.isFinite(values[0])) {
          this.skippedSteps++;
          badSteps.skipped(this.step, values[0]);
          continue;
        }
        badSteps.taken();
        this.task.afterStep?.(this.trainer, result);
        this.dp.afterStep(this.step, parameterValues(this.trainer));
        const seconds = (Date.now() - started) / 1000;
        const allreduce = this.share.size > 1 ? this.dp.lastSyncSeconds : undefined;
        this.doing = 'the metrics';
        this.records?.step(this.step, values, { lr, gradNorm, seconds, dataWait, allreduce });
        if (this.step % (this.evaluation?.every ?? Infinity) === 0 || this.step === config.maxSteps) await this.evaluate();
        if (this.step % config.checkpointEvery === 0) this.save();
      }
      if (!this.lastCheckpoint.endsWith(`${String(this.step).padStart(8, '0')}.ckpt`)) this.save();
    } catch (error) {
      throw this.diskFull(error) ?? error;
    }
  }

  async close(): Promise<void> {
    try {
      this.records?.close();
    } finally {
      await this.batches.close();
      this.dp.dispose();
    }
  }

  /** Exports a completed run (rank 0), releases the sessions and reports. */
  async finish(): Promise<LoopSummary> {
    const interrupted = this.step < this.task.config.maxSteps;
    let exports: Readonly<Record<string, string>> = {};
    try {
      this.doing = 'the exports';
      if (!interrupted && this.dp.isRoot) exports = this.task.exports(this.trainer);
    } catch (error) {
      throw this.diskFull(error) ?? error;
    } finally {
      await this.trainer.release();
    }
    const badFiles = this.batches.badFiles.length;
    this.log(
      `${interrupted ? 'stopped' : 'finished'} at step ${this.step}: checkpoint ${this.lastCheckpoint}` +
        Object.entries(exports).map(([label, file]) => `, ${label} ${file}`).join('') +
        `; ${this.skippedSteps} step(s) skipped, ${badFiles} bad file(s) skipped`,
    );
    return { steps: this.step, skippedSteps: this.skippedSteps, badFiles, checkpoint: this.lastCheckpoint, exports, interrupted };
  }

  private async evaluate(): Promise<void> {
    if (!this.evaluation) return;
    const values = await this.evaluation.measure(this.trainer);
    this.doing = 'the metrics';
    this.records!.evaluation(this.step, this.evaluation.metrics, values);
    const best = this.evaluation.best;
    if (!best) return;
    const value = values[this.evaluation.metrics.findIndex((m) => m.key === best.key)];
    const better = best.direction === 'max' ? value > (this.best?.value ?? -Infinity) : value < (this.best?.value ?? Infinity);
    if (!Number.isFinite(value) || !better) return;
    this.best = { key: best.key, value, step: this.step };
    this.doing = 'the best checkpoint';
    const file = saveBest(this.trainer, this.task.config.logdir, this.step, this.runState());
    this.log(`step ${this.step}: best ${best.key} so far, ${value.toFixed(4)}: ${file}`);
  }

  private save(): void {
    if (!this.dp.isRoot) return;
    const { config } = this.task;
    this.doing = 'a checkpoint';
    this.lastCheckpoint = saveRun(this.trainer, config.logdir, this.step, this.runState(), config.keepCheckpoints);
    this.records!.checkpointed();
  }

  private runState(): RunState<Config, Cursor> {
    const { config } = this.task;
    const state = { config, optimizerSteps: this.trainer.stepCount, cursor: this.cursor!, skippedSteps: this.skippedSteps };
    return this.best ? { ...state, best: this.best } : state;
  }

  private diskFull(error: unknown): DiskFullError | undefined {
    if (!isDiskFull(error)) return undefined;
    const latest = latestCheckpoint(checkpointDir(this.task.config.logdir));
    const last = latest ? `the last checkpoint, ${latest}, is whole` : 'no checkpoint was written yet';
    return new DiskFullError(
      `no space left on the device while writing ${this.doing} at step ${this.step} (logdir ${this.task.config.logdir}); ` +
        `the run stopped and ${last}: free space, then --resume`,
    );
  }
}

function parameterValues(trainer: Trainer) {
  return trainer.parameters.names().map((n) => trainer.parameters.get(n));
}
