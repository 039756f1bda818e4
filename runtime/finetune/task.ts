/** SwinUNETR fine-tuning as a task of the training loop (runtime/loop): upstream's BTCV main.py on our artifacts. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { volumeCacheDir } from '../../data/cache/store';
import { createSegmentationLoader, SegmentationBatch } from '../../data/loader/loader';
import type { DataCursor } from '../../data/loader/schedule';
import type { RankShare } from '../../data/loader/share';
import { SEGMENTER_MODEL, writeSwinUnetrArtifacts } from '../../graph/models/swinunetr/artifacts';
import { IMAGE_INPUT, LABEL_INPUT } from '../../graph/models/swinunetr/model';
import { resolveSwinUnetrOptions, SwinUnetrOptions } from '../../graph/models/swinunetr/options';
import { SEGMENTER_FILE } from '../../graph/models/swinunetr/export';
import { segmenterMetadata } from '../../graph/models/swinunetr/segmenter-file';
import { importSwinUnetrWeights } from '../../graph/models/swinunetr/weights';
import type { BatchFeeds, LoadOptions, StepResult, Trainer } from '../session/trainer';
import { exportForwardModel } from '../session/export';
import type { Chart, Evaluation, Log, Metric, PlotSeries, TrainingTask } from '../loop/task';
import { FinetuneConfig, FinetuneConfigError, cropsPerRunFor, modelKey, optimizerConfig } from './config';
import { classNamesOf, FinetuneData, resolveFinetuneData } from './data';
import { runRecord } from './record';
import { diceMetrics, MEAN_DICE_KEY, ValidationDice } from './validation';

const ARTIFACTS_KEY_FILE = 'run-key.json';
/** The trained segmenter, self-contained (image in, logits out): the file `voco export` writes. */
export { SEGMENTER_FILE };
export const DICE_PLOT_FILE = 'dice.svg';

const STEP_METRICS: readonly Metric[] = [
  { key: 'loss', tag: 'loss' },
  { key: 'loss.dice', tag: 'loss/dice', progress: 'dice' },
  { key: 'loss.ce', tag: 'loss/ce', progress: 'ce' },
];
const PLOT: readonly PlotSeries[] = [
  { key: 'loss', label: 'DiceCE loss', color: '#d62728' },
  { key: 'loss.dice', label: 'Dice loss', color: '#1f77b4' },
  { key: 'loss.ce', label: 'cross-entropy', color: '#2ca02c' },
];
const CLASS_COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/**
 * Each step draws a batch (per volume `crops` crops centred on foreground 9 times in 10, flipped, rotated and
 * intensity-jittered as upstream), feeds image and label to the training graph (DiceCE loss and gradients), and
 * the optimizer steps. Validation is the sliding-window Dice over the validation list, and the loop keeps the
 * best checkpoint by its mean; the export is the trained segmenter.
 */
export class SegmentationFinetuning implements TrainingTask<FinetuneConfig, DataCursor, SegmentationBatch> {
  readonly title = 'SwinUNETR fine-tuning loss';
  readonly stepMetrics = STEP_METRICS;
  readonly plot = PLOT;
  readonly charts: readonly Chart[];
  readonly itemsPerStep: number;
  readonly session: LoadOptions;
  readonly classNames: readonly string[];
  private readonly model: SwinUnetrOptions;
  private data: FinetuneData | undefined;

  constructor(readonly config: FinetuneConfig) {
    this.classNames = classNamesOf(config);
    this.model = resolveSwinUnetrOptions({
      featureSize: config.featureSize,
      inChannels: 1,
      outChannels: this.classNames.length,
      roi: config.roi,
      batchSize: config.batchSize * config.crops,
    });
    if (config.classRatios !== undefined && config.classRatios.length !== this.classNames.length) {
      throw new FinetuneConfigError(`--class-ratios needs one ratio per class (${this.classNames.length}, background first), got ${config.classRatios.length}`);
    }
    this.itemsPerStep = this.model.batchSize;
    this.session = { provider: config.ep, deviceId: config.deviceId, threads: config.threads || undefined, seed: config.seed };
    const dice = diceMetrics(this.classNames);
    this.charts = [
      {
        file: DICE_PLOT_FILE,
        title: 'Validation Dice',
        series: [
          { key: MEAN_DICE_KEY, label: 'mean', color: '#000000', smoothing: 1 },
          ...dice.slice(1).map((m, i) => ({ key: m.key, label: this.classNames[i + 1], color: CLASS_COLORS[i % CLASS_COLORS.length], smoothing: 1 })),
        ],
      },
    ];
  }

  /** The run's first line: the model, and where its starting weights come from. */
  startLine(): string {
    const c = this.config;
    const weights = c.initFrom ? `weights from ${c.initFrom}` : `fresh weights (seed ${c.seed})`;
    const frozen = c.freezeEncoder ? ', encoder frozen' : '';
    return `fine-tuning SwinUNETR (feature size ${c.featureSize}, ${this.classNames.length} classes, roi ${c.roi}, ${c.crops} crops per volume${frozen}) from ${weights}`;
  }

  describeRanks(ranks: number): string {
    const { batchSize, crops } = this.config;
    return `batch ${batchSize} volume(s) x ${crops} crops per rank, ${batchSize * ranks} volumes per step`;
  }

  checkResume(saved: FinetuneConfig): void {
    if (modelKey(saved, classNamesOf(saved).length) !== modelKey(this.config, this.classNames.length)) {
      throw new FinetuneConfigError(`--resume: the checkpoint was trained with other model, optimizer or --freeze-encoder options than this run's`);
    }
  }

  /** Writes the artifacts into `<logdir>/artifacts` unless they are there for the same options; finds the data. */
  prepare(log: Log): string {
    const dir = path.join(this.config.logdir, 'artifacts');
    const keyFile = path.join(dir, ARTIFACTS_KEY_FILE);
    const cropsPerRun = cropsPerRunFor(this.config);
    // A resumed run may take another --crops-per-run (same numbers), but its artifacts are rebuilt for it.
    const key = `${modelKey(this.config, this.classNames.length)} crops per run ${cropsPerRun}`;
    if (!fs.existsSync(keyFile) || fs.readFileSync(keyFile, 'utf8') !== key) {
      log(`building the SwinUNETR training graphs in ${dir}`);
      writeSwinUnetrArtifacts(dir, this.model, {
        optimizer: optimizerConfig(this.config),
        freezeEncoder: this.config.freezeEncoder,
        cropsPerRun,
      });
      fs.writeFileSync(keyFile, key);
    }
    this.data = resolveFinetuneData(this.config, log);
    if (this.data.missingValidation) log(`warning: ${this.data.missingValidation}: training without validation (no Dice, no best.ckpt)`);
    return dir;
  }

  /** `--init-from`: every parameter the source has in name and shape, the rest fresh; the report in one line. */
  initialise(trainer: Trainer, log: Log): void {
    const source = this.config.initFrom;
    if (!source) return;
    const { values, report } = importSwinUnetrWeights(source, this.model, { seed: this.config.seed });
    for (const name of trainer.parameters.names()) {
      const value = values.get(name);
      if (value) trainer.parameters.set(name, value);
    }
    log(`--init-from ${source}: ${report.summary}`);
  }

  openBatches(start: DataCursor | undefined, share: RankShare, warn: Log) {
    const c = this.config;
    return createSegmentationLoader({
      sources: this.data!.training,
      cacheDir: volumeCacheDir(c.cacheDir),
      seed: c.seed,
      batchSize: c.batchSize,
      share,
      sample: {
        roi: c.roi,
        numSamples: c.crops,
        sampler: c.cropSampler ?? 'pos-neg',
        ...(c.cropSampler === 'classes' ? { ratios: c.classRatios ?? this.classNames.map(() => 1) } : {}),
      },
      workers: c.workers,
      startCursor: start,
      onBadFile: c.onBadFile,
      onWarning: warn,
    });
  }

  async openEvaluation(): Promise<Evaluation | undefined> {
    const c = this.config;
    if (this.data!.validation.length === 0) return undefined;
    const settings = { roi: c.roi, overlap: c.overlap, swBatchSize: c.swBatchSize, inChannels: 1, numClasses: this.classNames.length };
    const warn = (line: string) => process.stderr.write(`warning: ${line}\n`);
    const validation = await ValidationDice.open(this.data!.validation, volumeCacheDir(c.cacheDir), settings, warn);
    return {
      every: c.valEvery,
      metrics: diceMetrics(this.classNames),
      best: { key: MEAN_DICE_KEY, direction: 'max' },
      measure: (trainer) => validation.measure(trainer),
    };
  }

  feeds(batch: SegmentationBatch): BatchFeeds {
    return { [IMAGE_INPUT]: batch.image, [LABEL_INPUT]: batch.label };
  }

  measure(result: StepResult): readonly number[] {
    return [result.loss, ...['loss.dice', 'loss.ce'].map((name) => Number(result.extras[name].data[0]))];
  }

  /** The trained segmenter, its metadata recording the roi, the class names and the preprocessing of the run. */
  exports(trainer: Trainer): Readonly<Record<string, string>> {
    const segmenter = path.join(this.config.logdir, SEGMENTER_FILE);
    exportForwardModel(trainer, SEGMENTER_MODEL, segmenter, { metadata: segmenterMetadata(this.config.roi, runRecord(this.config, this.classNames)) });
    return { segmenter };
  }
}
