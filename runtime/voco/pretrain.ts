import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeBytesAtomically } from '../../common/atomic-file';
import { Rng } from '../../common/rng';
import { LoaderBatch, createBatchLoader } from '../../data/loader/loader';
import { DataCursor, mixSeed } from '../../data/loader/schedule';
import { RankShare } from '../../data/loader/share';
import { size } from '../../graph/core/shape';
import { EMA_PREFIX, VocoGraph, buildVocoGraph } from '../../graph/models/voco/model';
import { resolveVocoOptions, stepRows } from '../../graph/models/voco/options';
import { ENCODER_FILE, SAFETENSORS_EXPORT_FILE } from '../../graph/models/voco/weight-files';
import { ENCODER_MODEL, writeVocoArtifacts } from '../../graph/models/voco/artifacts';
import { exportVocoStateDict, importVocoWeightsForTraining } from '../../graph/models/voco/weights';
import { broadcastJson, Communicator, SingleProcess } from '../distributed/communicator';
import { DataParallel } from '../distributed/data-parallel';
import { exportForwardModel } from '../session/export';
import { gradientPolicy } from '../session/gradient-hooks';
import { lossPlotSvg } from '../observe/loss-plot';
import { MetricsLog } from '../observe/metrics-log';
import { TrainingProgress } from '../observe/progress';
import { TensorBoardWriter } from '../observe/tensorboard';
import { Trainer, loadArtifacts } from '../session/trainer';
import { writeSafetensors } from '../../io/weights/safetensors';
import { NamedTensor, TensorMap } from '../../io/weights/tensor-map';
import { Checkpoint, OPTIMIZER_GROUP, PARAMETERS_GROUP, latestCheckpoint, loadCheckpoint, saveCheckpoint } from '../../io/checkpoint';
import { TrainConfig, TrainConfigError, artifactsKey, cropsPerRunFor, heldOutBatchesFor, modelKey, optimizerConfig } from './config';
import { HeldOutLoss } from './held-out';
import { resolveSources } from './data-sources';
import { keepMask } from './masks';
import { learningRate } from '../loop/schedule';
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

/** Where a resumed run continues: what every rank needs of the checkpoint besides its tensors. */
interface ResumePoint {
  readonly step: number;
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
  /** The ranks of a data-parallel run (default: this process alone); see docs/distributed.md. */
  readonly comm?: Communicator;
  /** Data-parallel: compare the ranks' parameter digests every N steps (default 100; 0: never). */
  readonly digestEvery?: number;
}

const ARTIFACTS_KEY_FILE = 'run-key.json';

export const checkpointDir = (logdir: string): string => path.join(logdir, 'checkpoints');

/** The checkpoint `--resume` continues from (the config it stores is the run's config). */
export function resumeCheckpoint(logdir: string, resume: string | true): Checkpoint<RunState> {
  const file = resume === true ? latestCheckpoint(checkpointDir(logdir)) : resume;
  if (!file) throw new TrainConfigError(`--resume: no checkpoint in ${checkpointDir(logdir)}`);
  return loadCheckpoint<RunState>(file);
}

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
 * Upstream's voco_train.py on our artifacts: each step draws a batch and the dropout masks, runs the training
 * graph (EMA teacher update, forward, loss, gradients), skips the step when the gradients are not finite, clips
 * their global norm if asked, runs the optimizer graph, and adopts the EMA teacher. Checkpoints every N steps and
 * at the end; the encoder and the upstream state dict are exported when the run completes.
 *
 * With `options.comm` of several ranks the run is data-parallel (docs/distributed.md): every rank starts from rank
 * 0's values, reads its share of each global batch, and averages the gradients before clipping and the non-finite
 * check, so all ranks take the same decisions and keep identical parameters. Only rank 0 reads the checkpoint it
 * resumes from and writes logs, metrics, checkpoints and exports.
 */
export async function pretrain(config: TrainConfig, options: RunOptions = {}): Promise<RunSummary> {
  const comm = options.comm ?? new SingleProcess();
  const dp = new DataParallel(comm, { digestEvery: options.digestEvery });
  const root = dp.isRoot;
  const share: RankShare = { rank: comm.rank, size: comm.size };
  const print = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const log = root ? print : () => undefined;
  // Bad files are seen by the rank that reads them: every rank reports its own.
  const warn = (line: string) => print(comm.size > 1 ? `warning: rank ${comm.rank}: ${line}` : `warning: ${line}`);
  const resumed = root && options.resume ? resumeCheckpoint(config.logdir, options.resume) : undefined;
  if (resumed && modelKey(resumed.meta.config) !== modelKey(config)) {
    throw new TrainConfigError(`--resume: the checkpoint was trained with other model or optimizer options than this run's`);
  }
  const resumeAt = options.resume ? broadcastJson<ResumePoint | undefined>(comm, resumed && resumePoint(resumed)) : undefined;
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
  const { artifactsDir, sources } = inTurnPerFileSystem(comm, () => ({
    artifactsDir: ensureArtifacts(config, vg, log),
    sources: resolveSources(config.data, config.cacheDir, config.phantomCount, log),
  }));
  const trainer = await loadArtifacts(artifactsDir, { provider: config.ep, deviceId: config.deviceId, threads: config.threads || undefined, seed: config.seed });
  const parameterValues = () => trainer.parameters.names().map((n) => trainer.parameters.get(n));

  if (resumed) restoreStores(trainer, resumed);
  else if (config.initFrom && root) {
    const { values, report } = importVocoWeightsForTraining(config.initFrom, vg);
    if (report) log(`warning: --init-from ${config.initFrom}: ${report} (those stay freshly initialised)`);
    for (const [name, v] of values) trainer.parameters.set(name, v);
    log(`initialised from ${config.initFrom}`);
  }
  if (comm.size > 1) {
    dp.syncInitialState([...parameterValues(), ...trainer.optimizerState.snapshot().values()]);
    log(`data-parallel over ${comm.size} ranks: batch ${config.batchSize} per rank, ${config.batchSize * comm.size} volumes per step`);
  }
  const startStep = resumeAt?.step ?? 0;
  let skippedSteps = resumeAt?.skippedSteps ?? 0;
  if (resumeAt) {
    trainer.stepCount = resumeAt.optimizerSteps;
    log(`resuming from step ${startStep} (${resumeAt.optimizerSteps} optimizer steps)`);
  }

  const metrics = root ? new MetricsLog(config.logdir) : undefined;
  if (metrics && resumeAt) dropRecordsAfter(metrics, startStep);
  const loader = createBatchLoader({
    sources,
    cacheDir: path.join(config.cacheDir, 'volumes'),
    seed: config.seed,
    batchSize: config.batchSize,
    share,
    swBatchSize: config.swBatchSize,
    voco: { roi: config.roi },
    workers: config.workers,
    startCursor: resumeAt?.cursor,
    onBadFile: config.onBadFile,
    onWarning: warn,
  });
  const tensorboard = root ? new TensorBoardWriter(config.logdir) : undefined;
  const heldOut = root && heldOutBatchesFor(config) > 0 ? await HeldOutLoss.draw(sources, config, heldOutBatchesFor(config)) : undefined;
  const measureHeldOut = async (at: number) => {
    if (!heldOut) return;
    const value = await heldOut.measure(trainer);
    metrics!.append({ step: at, held_out_loss: value });
    tensorboard!.scalars(at, { 'loss/held_out': value });
  };
  if (startStep === 0) await measureHeldOut(0);
  const cropsPerStep = comm.size * stepRows(vocoOptions);
  const progress = options.progress === false || !root ? undefined : new TrainingProgress(config.maxSteps, cropsPerStep, startStep);
  const schedule = { kind: config.lrSchedule, baseLr: config.lr, warmupSteps: config.warmupSteps, totalSteps: config.maxSteps };

  let cursor = resumeAt?.cursor;
  let step = startStep;
  let consecutiveBad = 0;
  let lastCheckpoint = '';
  const save = () => {
    if (!root) return;
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
    writeBytesAtomically(path.join(config.logdir, 'loss.svg'), lossPlot(metrics!, config.logdir));
    tensorboard!.flush();
  };

  try {
    // Stopping is decided together: a rank that left the loop alone would leave the others waiting for it.
    while (step < config.maxSteps && !dp.anyRank(options.signal?.aborted ?? false)) {
      const started = Date.now();
      const batch = await loader.next();
      const dataWait = (Date.now() - started) / 1000;
      const feeds = stepFeeds(vg, batch, config.seed, step, share);
      const lr = learningRate(schedule, step);
      let gradNorm: number | undefined;
      const policy = gradientPolicy({ maxNorm: config.gradClip ? config.maxGradNorm : undefined, onNorm: (n) => (gradNorm = n) });
      const result = await trainer.step(feeds, { lr, gradientHook: dp.gradientHook(policy) });
      // The mean over ranks, before the decision below, so that every rank decides alike.
      const [loss, intra, inter, reg] = dp.mean([result.loss, ...['intra', 'inter', 'reg'].map((k) => Number(result.extras[`loss.${k}`].data[0]))]);
      step++;
      cursor = batch.cursor;
      if (result.skipped || !Number.isFinite(loss)) {
        skippedSteps++;
        consecutiveBad++;
        log(`warning: step ${step}: loss ${loss} or its gradients are not finite; step skipped (${consecutiveBad} in a row)`);
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
      dp.afterStep(step, parameterValues());
      const parts = { intra, inter, reg };
      const seconds = (Date.now() - started) / 1000;
      const record: Record<string, number> = { step, loss, 'loss.intra': intra, 'loss.inter': inter, 'loss.reg': reg, lr };
      if (gradNorm !== undefined) record.grad_norm = gradNorm;
      Object.assign(record, { seconds, data_wait: dataWait });
      const scalars: Record<string, number> = { loss, 'loss/intra': intra, 'loss/inter': inter, 'loss/reg': reg, lr, 'time/step_seconds': seconds, 'time/data_wait_seconds': dataWait };
      // The gradient averaging's share of the step (waiting for the slowest rank included).
      if (comm.size > 1) record.allreduce = scalars['time/allreduce_seconds'] = dp.lastSyncSeconds;
      metrics?.append(record);
      tensorboard?.scalars(step, scalars);
      progress?.update({ step, loss, parts, lr });
      if (step % config.heldOutEvery === 0 || step === config.maxSteps) await measureHeldOut(step);
      if (step % config.checkpointEvery === 0) save();
    }
    if (lastCheckpoint === '' || !lastCheckpoint.endsWith(`${String(step).padStart(8, '0')}.ckpt`)) save();
  } finally {
    progress?.stop();
    await loader.close();
    tensorboard?.close();
    dp.dispose();
  }

  const interrupted = step < config.maxSteps;
  let encoder: string | undefined;
  let weights: string | undefined;
  if (!interrupted && root) {
    encoder = path.join(config.logdir, ENCODER_FILE);
    exportForwardModel(trainer, ENCODER_MODEL, encoder);
    weights = path.join(config.logdir, SAFETENSORS_EXPORT_FILE);
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

function resumePoint(checkpoint: Checkpoint<RunState>): ResumePoint {
  const { optimizerSteps, cursor, skippedSteps } = checkpoint.meta;
  return { step: checkpoint.step, optimizerSteps, cursor, skippedSteps };
}

/**
 * Runs `prepare` on rank 0, then on the first rank of every other machine, then on the remaining ranks, one group
 * after the other. What it writes into shared folders (the artifacts, the phantom dataset) is then written once per
 * file system and found ready by the ranks after, instead of being written by several ranks at once.
 */
function inTurnPerFileSystem<T>(comm: Communicator, prepare: () => T): T {
  if (comm.size === 1) return prepare();
  const turn = comm.rank === 0 ? 0 : comm.localRank === 0 ? 1 : 2;
  let result: T | undefined;
  for (let t = 0; t < 3; t++) {
    if (t === turn) result = prepare();
    comm.barrier();
  }
  return result!;
}

/** Writes the artifacts into `<logdir>/artifacts` unless they are there already for the same model options. */
function ensureArtifacts(config: TrainConfig, vg: VocoGraph, log: (line: string) => void): string {
  const dir = path.join(config.logdir, 'artifacts');
  const keyFile = path.join(dir, ARTIFACTS_KEY_FILE);
  const key = artifactsKey(config);
  if (fs.existsSync(keyFile) && fs.readFileSync(keyFile, 'utf8') === key) return dir;
  log(`building the training graphs in ${dir}`);
  writeVocoArtifacts(dir, vg.options, { optimizer: optimizerConfig(config), encoderBatch: 1, cropsPerRun: cropsPerRunFor(config) });
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
  writeBytesAtomically(metrics.file, kept.map((r) => JSON.stringify(r) + '\n').join(''));
}

function lossPlot(metrics: MetricsLog, logdir: string): string {
  const records = metrics.read();
  const series = (key: string, label: string, color: string, smoothing?: number) => ({
    label,
    color,
    smoothing,
    points: records.filter((r) => typeof r[key] === 'number').map((r) => [Number(r.step), Number(r[key])] as const),
  });
  return lossPlotSvg(`VoCo pre-training loss — ${path.basename(path.resolve(logdir))}`, [
    series('loss', 'loss', '#d62728'),
    series('loss.intra', 'intra-volume', '#1f77b4'),
    series('loss.inter', 'inter-volume', '#2ca02c'),
    series('loss.reg', 'regularisation', '#9467bd'),
    series('held_out_loss', 'held-out loss', '#000000', 1),
  ]);
}
