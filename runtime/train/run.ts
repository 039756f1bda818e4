import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng } from '../../common/rng';
import { createBatchLoader } from '../../data/loader/loader';
import { DataCursor, mixSeed } from '../../data/loader/schedule';
import { size } from '../../graph/core/shape';
import { EMA_PREFIX, VocoGraph, buildVocoGraph, resolveVocoOptions } from '../../graph/models/voco';
import { ENCODER_MODEL, writeVocoArtifacts } from '../../graph/models/voco-artifacts';
import { exportVocoStateDict, importVocoWeights } from '../../graph/models/voco-weights';
import { exportForwardModel } from '../export';
import { gradientPolicy } from '../gradient-hooks';
import { lossPlotSvg } from '../observe/loss-plot';
import { MetricsLog } from '../observe/metrics-log';
import { TrainingProgress } from '../observe/progress';
import { TensorBoardWriter } from '../observe/tensorboard';
import { Trainer, loadArtifacts } from '../trainer';
import { writeSafetensors } from '../weights/safetensors';
import { NamedTensor, TensorMap } from '../weights/tensor-map';
import { Checkpoint, latestCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint';
import { TrainConfig, TrainConfigError, modelKey, optimizerConfig } from './config';
import { resolveSources } from './data-sources';
import { keepMask } from './masks';
import { learningRate } from './schedule';
import { UserError } from '../../common/user-error';

export class TrainingDivergedError extends UserError {}

/** What a checkpoint of a pre-training run carries besides tensors. */
export interface RunState {
  readonly config: TrainConfig;
  /** Optimizer steps taken (skipped steps excluded): the bias-correction count. */
  readonly optimizerSteps: number;
  readonly cursor: DataCursor;
  readonly skippedSteps: number;
}

export interface RunSummary {
  readonly steps: number;
  readonly skippedSteps: number;
  readonly badFiles: number;
  readonly checkpoint: string;
  readonly encoder?: string;
  readonly weights?: string;
  readonly interrupted: boolean;
}

export interface RunOptions {
  /** Resume from this checkpoint, or from the newest one in the logdir when true. */
  readonly resume?: string | true;
  /** Stop cleanly (checkpoint, exports skipped) once this is aborted; Ctrl-C in the CLI. */
  readonly signal?: AbortSignal;
  readonly log?: (line: string) => void;
  /** Show the progress line (default true). */
  readonly progress?: boolean;
}

export const PARAMETERS_GROUP = 'parameters';
export const OPTIMIZER_GROUP = 'optimizer';
const ARTIFACTS_KEY_FILE = 'run-key.json';

export const checkpointDir = (logdir: string): string => path.join(logdir, 'checkpoints');

/** The checkpoint `--resume` continues from (the config it stores is the run's config). */
export function resumeCheckpoint(logdir: string, resume: string | true): Checkpoint<RunState> {
  const file = resume === true ? latestCheckpoint(checkpointDir(logdir)) : resume;
  if (!file) throw new TrainConfigError(`--resume: no checkpoint in ${checkpointDir(logdir)}`);
  return loadCheckpoint<RunState>(file);
}

/**
 * Upstream's voco_train.py on our artifacts: each step draws a batch and the dropout masks, runs the training
 * graph (EMA teacher update, forward, loss, gradients), skips the step when the gradients are not finite, clips
 * their global norm if asked, runs the optimizer graph, and adopts the EMA teacher. Checkpoints every N steps and
 * at the end; the encoder and the upstream state dict are exported when the run completes.
 */
export async function pretrain(config: TrainConfig, options: RunOptions = {}): Promise<RunSummary> {
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const resumed = options.resume ? resumeCheckpoint(config.logdir, options.resume) : undefined;
  if (resumed && modelKey(resumed.meta.config) !== modelKey(config)) {
    throw new TrainConfigError(`--resume: the checkpoint was trained with other model or optimizer options than this run's`);
  }
  fs.mkdirSync(config.logdir, { recursive: true });
  const vocoOptions = resolveVocoOptions({
    featureSize: config.featureSize,
    roi: config.roi,
    batchSize: config.batchSize,
    swBatchSize: config.swBatchSize,
    dropPathRate: config.dropPathRate,
    featureDropout: config.featureDropout,
  });
  const vg = buildVocoGraph(vocoOptions, 'train');
  const artifactsDir = ensureArtifacts(config, vg, log);
  const trainer = await loadArtifacts(artifactsDir, { provider: config.ep, deviceId: config.deviceId, threads: config.threads || undefined, seed: config.seed });

  let startStep = 0;
  let skippedSteps = 0;
  if (resumed) {
    restoreStores(trainer, resumed);
    trainer.stepCount = resumed.meta.optimizerSteps;
    startStep = resumed.step;
    skippedSteps = resumed.meta.skippedSteps;
    log(`resuming from step ${startStep} (${resumed.meta.optimizerSteps} optimizer steps)`);
  } else if (config.initFrom) {
    for (const [name, values] of importVocoWeights(config.initFrom, vg)) trainer.parameters.set(name, values);
    log(`initialised from ${config.initFrom}`);
  }

  const metrics = new MetricsLog(config.logdir);
  if (resumed) dropRecordsAfter(metrics, startStep);
  const loader = createBatchLoader({
    sources: resolveSources(config.data, config.cacheDir, config.phantomCount, log),
    cacheDir: path.join(config.cacheDir, 'volumes'),
    seed: config.seed,
    batchSize: config.batchSize,
    swBatchSize: config.swBatchSize,
    voco: { roi: config.roi },
    workers: config.workers,
    startCursor: resumed?.meta.cursor,
    onBadFile: config.onBadFile,
    onWarning: (line) => log(`warning: ${line}`),
  });
  const tensorboard = new TensorBoardWriter(config.logdir);
  const cropsPerStep = config.batchSize * (config.swBatchSize + vocoOptions.baseCrops);
  const progress = options.progress === false ? undefined : new TrainingProgress(config.maxSteps, cropsPerStep, startStep);
  const schedule = { kind: config.lrSchedule, baseLr: config.lr, warmupSteps: config.warmupSteps, totalSteps: config.maxSteps };

  let cursor = resumed?.meta.cursor;
  let step = startStep;
  let consecutiveBad = 0;
  let lastCheckpoint = '';
  const save = () => {
    lastCheckpoint = saveCheckpoint<RunState>(
      checkpointDir(config.logdir),
      {
        step,
        groups: new Map([
          [PARAMETERS_GROUP, storeTensors(trainer.parameters.snapshot(), trainer)],
          [OPTIMIZER_GROUP, storeTensors(trainer.optimizerState.snapshot(), trainer, true)],
        ]),
        meta: { config, optimizerSteps: trainer.stepCount, cursor: cursor!, skippedSteps },
      },
      config.keepCheckpoints,
    );
    fs.writeFileSync(path.join(config.logdir, 'loss.svg'), lossPlot(metrics, config.logdir));
    tensorboard.flush();
  };

  try {
    while (step < config.maxSteps && !options.signal?.aborted) {
      const started = Date.now();
      const batch = await loader.next();
      const dataWait = (Date.now() - started) / 1000;
      const feeds: Record<string, Float32Array> = { images: batch.images, crops: batch.crops, labels: batch.labels };
      vg.inputs.masks.forEach((m, i) => {
        feeds[m.tensor.name] = keepMask(new Rng(mixSeed(config.seed, step, i)), size(m.tensor.shape), m.p);
      });
      const lr = learningRate(schedule, step);
      let gradNorm: number | undefined;
      const policy = gradientPolicy({ maxNorm: config.gradClip ? config.maxGradNorm : undefined, onNorm: (n) => (gradNorm = n) });
      const result = await trainer.step(feeds, { lr, gradientHook: policy });
      step++;
      cursor = batch.cursor;
      if (result.skipped || !Number.isFinite(result.loss)) {
        skippedSteps++;
        consecutiveBad++;
        log(`warning: step ${step}: loss ${result.loss} or its gradients are not finite; step skipped (${consecutiveBad} in a row)`);
        if (consecutiveBad >= config.maxBadSteps) {
          throw new TrainingDivergedError(
            `${consecutiveBad} steps in a row had a non-finite loss or gradient (last at step ${step}); stopping. ` +
              `Lower --lr or enable --grad-clip, then --resume from the last checkpoint.`,
          );
        }
        continue;
      }
      consecutiveBad = 0;
      for (const [name, value] of Object.entries(result.extras)) {
        if (name.startsWith(EMA_PREFIX)) trainer.parameters.set(name.slice(EMA_PREFIX.length), value.data as Float32Array);
      }
      const parts = Object.fromEntries(['intra', 'inter', 'reg'].map((k) => [k, Number(result.extras[`loss.${k}`].data[0])]));
      const seconds = (Date.now() - started) / 1000;
      metrics.append({ step, loss: result.loss, 'loss.intra': parts.intra, 'loss.inter': parts.inter, 'loss.reg': parts.reg, lr, ...(gradNorm === undefined ? {} : { grad_norm: gradNorm }), seconds, data_wait: dataWait });
      tensorboard.scalars(step, { loss: result.loss, 'loss/intra': parts.intra, 'loss/inter': parts.inter, 'loss/reg': parts.reg, lr, 'time/step_seconds': seconds, 'time/data_wait_seconds': dataWait });
      progress?.update({ step, loss: result.loss, parts, lr });
      if (step % config.checkpointEvery === 0) save();
    }
    if (lastCheckpoint === '' || !lastCheckpoint.endsWith(`${String(step).padStart(8, '0')}.ckpt`)) save();
  } finally {
    progress?.stop();
    await loader.close();
    tensorboard.close();
  }

  const interrupted = step < config.maxSteps;
  let encoder: string | undefined;
  let weights: string | undefined;
  if (!interrupted) {
    encoder = path.join(config.logdir, 'encoder.onnx');
    exportForwardModel(trainer, ENCODER_MODEL, encoder);
    weights = path.join(config.logdir, 'voco_weights.safetensors');
    writeSafetensors(weights, exportVocoStateDict(vg, trainer.parameters.snapshot() as Map<string, Float32Array>));
  }
  const summary: RunSummary = { steps: step, skippedSteps, badFiles: loader.badFiles.length, checkpoint: lastCheckpoint, encoder, weights, interrupted };
  await trainer.release();
  log(
    `${interrupted ? 'stopped' : 'finished'} at step ${step}: checkpoint ${lastCheckpoint}` +
      (encoder ? `, encoder ${encoder}, weights ${weights}` : '') +
      `; ${skippedSteps} step(s) skipped, ${loader.badFiles.length} bad file(s) skipped`,
  );
  return summary;
}

/** Writes the artifacts into `<logdir>/artifacts` unless they are there already for the same model options. */
function ensureArtifacts(config: TrainConfig, vg: VocoGraph, log: (line: string) => void): string {
  const dir = path.join(config.logdir, 'artifacts');
  const keyFile = path.join(dir, ARTIFACTS_KEY_FILE);
  const key = modelKey(config);
  if (fs.existsSync(keyFile) && fs.readFileSync(keyFile, 'utf8') === key) return dir;
  log(`building the training graphs in ${dir}`);
  writeVocoArtifacts(dir, vg.options, { optimizer: optimizerConfig(config), encoderBatch: 1 });
  fs.writeFileSync(keyFile, key);
  return dir;
}

function restoreStores(trainer: Trainer, checkpoint: Checkpoint<RunState>): void {
  const restore = (group: string, store: Trainer['parameters']) => {
    const tensors = checkpoint.groups.get(group);
    if (!tensors) throw new TrainConfigError(`--resume: the checkpoint has no "${group}" group`);
    for (const name of store.names()) {
      const t = tensors.get(name);
      if (!t) throw new TrainConfigError(`--resume: the checkpoint lacks ${group} tensor ${name}`);
      store.set(name, t.data as Float32Array);
    }
  };
  restore(PARAMETERS_GROUP, trainer.parameters);
  restore(OPTIMIZER_GROUP, trainer.optimizerState);
}

function storeTensors(values: ReadonlyMap<string, unknown>, trainer: Trainer, optimizer = false): TensorMap {
  const store = optimizer ? trainer.optimizerState : trainer.parameters;
  const map: TensorMap = new Map();
  for (const [name, data] of values) {
    const decl = store.decl(name);
    map.set(name, { name, dtype: 'float32', shape: decl.shape, data: data as Float32Array } satisfies NamedTensor);
  }
  return map;
}

/** Forgets metrics logged after the checkpoint a run resumes from (the killed run got further than it saved). */
function dropRecordsAfter(metrics: MetricsLog, step: number): void {
  const kept = metrics.read().filter((r) => Number(r.step) <= step);
  const temp = `${metrics.file}.tmp`;
  fs.writeFileSync(temp, kept.map((r) => JSON.stringify(r) + '\n').join(''));
  fs.renameSync(temp, metrics.file);
}

function lossPlot(metrics: MetricsLog, logdir: string): string {
  const records = metrics.read();
  const series = (key: string, label: string, color: string) => ({
    label,
    color,
    points: records.filter((r) => typeof r[key] === 'number').map((r) => [Number(r.step), Number(r[key])] as const),
  });
  return lossPlotSvg(`VoCo pre-training loss — ${path.basename(path.resolve(logdir))}`, [
    series('loss', 'loss', '#d62728'),
    series('loss.intra', 'intra-volume', '#1f77b4'),
    series('loss.inter', 'inter-volume', '#2ca02c'),
    series('loss.reg', 'regularisation', '#9467bd'),
  ]);
}
