/** VoCo pre-training as a task of the training loop (runtime/loop): upstream's voco_train.py on our artifacts. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng } from '../../common/rng';
import { volumeCacheDir } from '../../data/cache/store';
import { LoaderBatch, LoaderSource, createBatchLoader } from '../../data/loader/loader';
import { DataCursor, mixSeed } from '../../data/loader/schedule';
import { RankShare } from '../../data/loader/share';
import { size } from '../../graph/core/shape';
import { ENCODER_MODEL, writeVocoArtifacts } from '../../graph/models/voco/artifacts';
import { EMA_PREFIX, VocoGraph, buildVocoGraph } from '../../graph/models/voco/model';
import { resolveVocoOptions, stepRows } from '../../graph/models/voco/options';
import { ENCODER_FILE, SAFETENSORS_EXPORT_FILE } from '../../graph/models/voco/weight-files';
import { exportVocoStateDict, importVocoWeightsForTraining } from '../../graph/models/voco/weights';
import { writeSafetensors } from '../../io/weights/safetensors';
import type { Evaluation, Log, Metric, PlotSeries, TrainingTask } from '../loop/task';
import { exportForwardModel } from '../session/export';
import type { BatchFeeds, LoadOptions, StepResult, Trainer } from '../session/trainer';
import { TrainConfig, TrainConfigError, artifactsKey, cropsPerRunFor, heldOutBatchesFor, modelKey, optimizerConfig } from './config';
import { resolveSources } from './data-sources';
import { HeldOutLoss } from './held-out';
import { keepMask } from './masks';

const ARTIFACTS_KEY_FILE = 'run-key.json';
const LOSS_PARTS = ['intra', 'inter', 'reg'] as const;

const STEP_METRICS: readonly Metric[] = [
  { key: 'loss', tag: 'loss' },
  ...LOSS_PARTS.map((part) => ({ key: `loss.${part}`, tag: `loss/${part}`, progress: part })),
];
/** The metrics.jsonl key of the held-out loss. */
export const HELD_OUT_KEY = 'held_out_loss';
const HELD_OUT_METRICS: readonly Metric[] = [{ key: HELD_OUT_KEY, tag: 'loss/held_out' }];
const PLOT: readonly PlotSeries[] = [
  { key: 'loss', label: 'loss', color: '#d62728' },
  { key: 'loss.intra', label: 'intra-volume', color: '#1f77b4' },
  { key: 'loss.inter', label: 'inter-volume', color: '#2ca02c' },
  { key: 'loss.reg', label: 'regularisation', color: '#9467bd' },
  { key: HELD_OUT_KEY, label: 'held-out loss', color: '#000000', smoothing: 1 },
];

/**
 * The inputs of one training step: this rank's batch and the dropout masks. Masks are drawn from (seed, step, mask)
 * and, with several ranks, the rank, so that ranks drop different features as DistributedDataParallel replicas do.
 */
export function stepFeeds(vg: VocoGraph, batch: Pick<LoaderBatch, 'images' | 'crops' | 'labels'>, seed: number, step: number, share: RankShare): Record<string, Float32Array> {
  const feeds: Record<string, Float32Array> = { images: batch.images, crops: batch.crops, labels: batch.labels };
  vg.inputs.masks.forEach((m, i) => {
    const parts = share.size > 1 ? [seed, step, i, share.rank] : [seed, step, i];
    feeds[m.tensor.name] = keepMask(new Rng(mixSeed(...parts)), size(m.tensor.shape), m.p);
  });
  return feeds;
}

/**
 * Each step draws a batch (per volume a random region, its base crops and random crops with their overlap labels)
 * and the dropout masks; the training graph updates the teacher by EMA, computes the loss and the gradients; after
 * the optimizer step the EMA teacher is adopted. The held-out loss is the evaluation; the encoder and the upstream
 * state dict are the exports.
 */
export class VocoPretraining implements TrainingTask<TrainConfig, DataCursor, LoaderBatch> {
  readonly title = 'VoCo pre-training loss';
  readonly stepMetrics = STEP_METRICS;
  readonly plot = PLOT;
  readonly itemsPerStep: number;
  readonly session: LoadOptions;
  private readonly vg: VocoGraph;
  private sources: LoaderSource[] = [];

  constructor(readonly config: TrainConfig) {
    const { featureSize, roi, batchSize, swBatchSize, dropPathRate, featureDropout } = config;
    this.vg = buildVocoGraph(resolveVocoOptions({ featureSize, roi, batchSize, swBatchSize, dropPathRate, featureDropout }), 'train');
    this.itemsPerStep = stepRows(this.vg.options);
    this.session = { provider: config.ep, deviceId: config.deviceId, threads: config.threads || undefined, seed: config.seed };
  }

  describeRanks(ranks: number): string {
    return `batch ${this.config.batchSize} per rank, ${this.config.batchSize * ranks} volumes per step`;
  }

  checkResume(saved: TrainConfig): void {
    if (modelKey(saved) !== modelKey(this.config)) {
      throw new TrainConfigError(`--resume: the checkpoint was trained with other model or optimizer options than this run's`);
    }
  }

  /** Writes the artifacts into `<logdir>/artifacts` unless they are there for the same model options; finds the data. */
  prepare(log: Log): string {
    const dir = path.join(this.config.logdir, 'artifacts');
    const keyFile = path.join(dir, ARTIFACTS_KEY_FILE);
    const key = artifactsKey(this.config);
    if (!fs.existsSync(keyFile) || fs.readFileSync(keyFile, 'utf8') !== key) {
      log(`building the training graphs in ${dir}`);
      const { config } = this;
      writeVocoArtifacts(dir, this.vg.options, { optimizer: optimizerConfig(config), encoderBatch: 1, cropsPerRun: cropsPerRunFor(config) });
      fs.writeFileSync(keyFile, key);
    }
    this.sources = resolveSources(this.config.data, this.config.cacheDir, this.config.phantomCount, log);
    return dir;
  }

  initialise(trainer: Trainer, log: Log): void {
    const file = this.config.initFrom;
    if (!file) return;
    const { values, report } = importVocoWeightsForTraining(file, this.vg);
    if (report) log(`warning: --init-from ${file}: ${report} (those stay freshly initialised)`);
    for (const [name, v] of values) trainer.parameters.set(name, v);
    log(`initialised from ${file}`);
  }

  openBatches(start: DataCursor | undefined, share: RankShare, warn: Log) {
    const c = this.config;
    return createBatchLoader({
      sources: this.sources,
      cacheDir: volumeCacheDir(c.cacheDir),
      seed: c.seed,
      batchSize: c.batchSize,
      share,
      swBatchSize: c.swBatchSize,
      voco: { roi: c.roi },
      workers: c.workers,
      startCursor: start,
      onBadFile: c.onBadFile,
      onWarning: warn,
    });
  }

  async openEvaluation(): Promise<Evaluation | undefined> {
    const count = heldOutBatchesFor(this.config);
    if (count === 0) return undefined;
    const heldOut = await HeldOutLoss.draw(this.sources, this.config, count);
    return { every: this.config.heldOutEvery, metrics: HELD_OUT_METRICS, measure: async (trainer) => [await heldOut.measure(trainer)] };
  }

  feeds(batch: LoaderBatch, step: number, share: RankShare): BatchFeeds {
    return stepFeeds(this.vg, batch, this.config.seed, step, share);
  }

  measure(result: StepResult): readonly number[] {
    return [result.loss, ...LOSS_PARTS.map((part) => Number(result.extras[`loss.${part}`].data[0]))];
  }

  /** The teacher head after its EMA step, output by the training graph, becomes the teacher of the next step. */
  afterStep(trainer: Trainer, result: StepResult): void {
    for (const [name, value] of Object.entries(result.extras)) {
      if (name.startsWith(EMA_PREFIX)) trainer.parameters.set(name.slice(EMA_PREFIX.length), value.data as Float32Array);
    }
  }

  exports(trainer: Trainer): Readonly<Record<string, string>> {
    const encoder = path.join(this.config.logdir, ENCODER_FILE);
    exportForwardModel(trainer, ENCODER_MODEL, encoder);
    const weights = path.join(this.config.logdir, SAFETENSORS_EXPORT_FILE);
    writeSafetensors(weights, exportVocoStateDict(this.vg, trainer.parameters.snapshot() as Map<string, Float32Array>));
    return { encoder, weights };
  }
}
