/** What rank 0 of a run writes as it goes: metrics.jsonl, TensorBoard events, loss.svg and the progress line. */
import * as path from 'node:path';
import { writeBytesAtomically } from '../../common/atomic-file';
import { lossPlotSvg } from '../observe/loss-plot';
import { MetricRecord, MetricsLog, seriesOf } from '../observe/metrics-log';
import { TrainingProgress } from '../observe/progress';
import { TensorBoardWriter } from '../observe/tensorboard';
import type { Chart, Metric, PlotSeries } from './task';

export const LOSS_PLOT_FILE = 'loss.svg';

/** A step's figures besides the task's metrics. */
export interface StepTiming {
  readonly lr: number;
  /** The global gradient norm before clipping, when clipping. */
  readonly gradNorm?: number;
  readonly seconds: number;
  readonly dataWait: number;
  /** Data-parallel: the gradient averaging's share of the step (waiting for the slowest rank included). */
  readonly allreduce?: number;
}

export class RunRecords {
  private readonly metrics: MetricsLog;
  private readonly tensorboard: TensorBoardWriter;
  private progress: TrainingProgress | undefined;

  /** Opens the records of `logdir`; a resumed run first forgets what was logged after its checkpoint's step. */
  constructor(
    private readonly logdir: string,
    private readonly title: string,
    private readonly stepMetrics: readonly Metric[],
    private readonly plot: readonly PlotSeries[],
    resumedAt?: number,
    private readonly charts: readonly Chart[] = [],
  ) {
    this.metrics = new MetricsLog(logdir);
    if (resumedAt !== undefined) this.dropRecordsAfter(resumedAt);
    this.tensorboard = new TensorBoardWriter(logdir);
  }

  showProgress(totalSteps: number, itemsPerStep: number, startStep: number): void {
    this.progress = new TrainingProgress(totalSteps, itemsPerStep, startStep);
  }

  step(step: number, values: readonly number[], t: StepTiming): void {
    const record: Record<string, number> = { step };
    const scalars: Record<string, number> = {};
    this.stepMetrics.forEach((m, i) => {
      record[m.key] = values[i];
      scalars[m.tag] = values[i];
    });
    record.lr = scalars.lr = t.lr;
    if (t.gradNorm !== undefined) record.grad_norm = t.gradNorm;
    Object.assign(record, { seconds: t.seconds, data_wait: t.dataWait });
    Object.assign(scalars, { 'time/step_seconds': t.seconds, 'time/data_wait_seconds': t.dataWait });
    if (t.allreduce !== undefined) record.allreduce = scalars['time/allreduce_seconds'] = t.allreduce;
    this.metrics.append(record);
    this.tensorboard.scalars(step, scalars);
    const parts: Record<string, number> = {};
    this.stepMetrics.forEach((m, i) => m.progress && (parts[m.progress] = values[i]));
    this.progress?.update({ step, loss: values[0], parts, lr: t.lr });
  }

  evaluation(step: number, metrics: readonly Metric[], values: readonly number[]): void {
    this.metrics.append(Object.fromEntries([['step', step], ...metrics.map((m, i) => [m.key, values[i]])]));
    this.tensorboard.scalars(step, Object.fromEntries(metrics.map((m, i) => [m.tag, values[i]])));
  }

  /** After a checkpoint: the loss plot redrawn, the TensorBoard events flushed. */
  checkpointed(): void {
    const records = this.metrics.read();
    for (const chart of [{ file: LOSS_PLOT_FILE, title: this.title, series: this.plot }, ...this.charts]) {
      writeBytesAtomically(path.join(this.logdir, chart.file), this.chart(records, chart));
    }
    this.tensorboard.flush();
  }

  close(): void {
    this.progress?.stop();
    this.tensorboard.close();
  }

  private dropRecordsAfter(step: number): void {
    const kept = this.metrics.read().filter((r) => Number(r.step) <= step);
    writeBytesAtomically(this.metrics.file, kept.map((r) => JSON.stringify(r) + '\n').join(''));
  }

  private chart(records: readonly MetricRecord[], chart: Chart): string {
    const series = chart.series.map((s) => ({ label: s.label, color: s.color, smoothing: s.smoothing, points: seriesOf(records, s.key) }));
    return lossPlotSvg(`${chart.title} — ${path.basename(path.resolve(this.logdir))}`, series);
  }
}
