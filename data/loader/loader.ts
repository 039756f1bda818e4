import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { CacheCompression } from '../cache/format';
import type { PairSpec } from '../cache/pair-task';
import type { PreprocessSpec } from '../cache/pipeline-task';
import type { CacheDtype } from '../cache/quantize';
import { SegmentationSampleOptions, segmentationSampleOptions } from '../segmentation/options';
import type { VocoSampleArrays } from '../voco/sample';
import { VocoSamplingOptions, vocoOptions } from '../voco/options';
import type { BuiltBatch, SkippedFile } from './batch-builder';
import { BatchFailure } from './batch-builder';
import { BatchArrays, BatchKind, batchKindOps } from './batch-kinds';
import { BadSourceFileError, CursorMismatchError, LoaderClosedError, LoaderWorkerCrashError, NoUsableFileError } from './errors';
import type { BuildReply, BuildRequest, TaskConfig } from './protocol';
import { DataCursor, EpochSchedule, START_CURSOR } from './schedule';
import { checkShare, RankShare, WHOLE_BATCH } from './share';
import { startWorker } from './thread';
import { createTaskBuilder } from './volume-task';

export interface LoaderSource<P = PreprocessSpec> {
  readonly path: string;
  /** How to preprocess this file (`preprocessSpec(family, options)`); part of the cache key. */
  readonly preprocessing: P;
  /** Further files the entry is made from (a pair's label map, see pairSource). */
  readonly companions?: readonly string[];
  /** Times the file appears per epoch (default 1; upstream repeats some dataset groups 8 times). */
  readonly repeat?: number;
}

/** An image and its label map (`pairSource(image, label, family)`), for segmentation batches. */
export type PairLoaderSource = LoaderSource<PairSpec>;

/** What every loader takes, whatever its batches hold. */
export interface LoaderOptions<P> {
  readonly sources: readonly LoaderSource<P>[];
  /** Preprocessed volumes are read from / written to this cache; without it every sample is preprocessed anew. */
  readonly cacheDir?: string;
  readonly cacheDtype?: CacheDtype;
  readonly cacheCompression?: CacheCompression;
  readonly seed: number;
  /** Volumes per batch (b): per rank in a data-parallel run. */
  readonly batchSize: number;
  /**
   * Data-parallel: this rank's part of each global batch of `batchSize * size` entries (see share.ts). The cursor
   * stays global, so a run resumes at the same place in the data with any number of ranks. Default: one process.
   */
  readonly share?: RankShare;
  /** Worker threads (default 1); 0 builds each batch on the calling thread when it is asked for. */
  readonly workers?: number;
  /** Batches built or being built ahead of the consumer (default 2 per worker, at least 1). */
  readonly prefetch?: number;
  /** Where to continue (from a checkpoint); default the start of epoch 0. */
  readonly startCursor?: DataCursor;
  /** A bad source file is skipped with a warning (default) or stops the loader with BadSourceFileError. */
  readonly onBadFile?: 'skip' | 'fail';
  /** Receives one line per distinct bad file skipped (default: stderr). */
  readonly onWarning?: (message: string) => void;
}

/** VoCo pre-training batches. */
export interface BatchLoaderOptions extends LoaderOptions<PreprocessSpec> {
  /** Random crops per volume (sw). */
  readonly swBatchSize: number;
  /** Other VoCo sampling options (crop size, grid, augmentation); default upstream's. */
  readonly voco?: Partial<Omit<VocoSamplingOptions, 'swBatchSize'>>;
}

/** Segmentation fine-tuning batches: per volume `numSamples` crops of the image and of its label map. */
export interface SegmentationLoaderOptions extends LoaderOptions<PairSpec> {
  /** Crop size, crops per volume, the pos/neg ratio and augmentations; default upstream's. */
  readonly sample?: Partial<SegmentationSampleOptions>;
}

/** A batch's arrays, their shapes, its step and the cursor after it. */
export type Batch<A extends { readonly [K in keyof A]: Float32Array }> = A & {
  readonly step: number;
  readonly dims: { readonly [K in keyof A]: number[] };
  /** The cursor after this batch: save it with the checkpoint of this step to resume with the next batch. */
  readonly cursor: DataCursor;
};

/** images [b * sw, 1, r, r, r], crops [b * 9, 1, r, r, r], labels [b, sw, 9]. */
export type LoaderBatch = Batch<VocoSampleArrays>;

/** image and label [b * numSamples, 1, r, r, r] (the label's class indices as floats). */
export type SegmentationBatch = Batch<{ readonly image: Float32Array; readonly label: Float32Array }>;

export interface BatchLoader<B = LoaderBatch> {
  /** The next batch, in step order. */
  next(): Promise<B>;
  /** Stops the workers; pending and later `next()` calls reject with LoaderClosedError. */
  close(): Promise<void>;
  /** Distinct bad files skipped so far, for the run summary. */
  readonly badFiles: readonly SkippedFile[];
  /** Times a bad file was skipped (a file counts again each time the order brings it up). */
  readonly skippedCount: number;
}

export function createBatchLoader(options: BatchLoaderOptions): BatchLoader<LoaderBatch> {
  const voco = vocoOptions({ ...options.voco, swBatchSize: options.swBatchSize });
  return openLoader(options, { kind: 'voco', voco });
}

export function createSegmentationLoader(options: SegmentationLoaderOptions): BatchLoader<SegmentationBatch> {
  return openLoader(options, { kind: 'segmentation', segmentation: segmentationSampleOptions(options.sample) });
}

function openLoader<B>(options: LoaderOptions<unknown>, kind: BatchKind): BatchLoader<B> {
  const workers = options.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 0) throw new RangeError(`workers must be a whole number >= 0, got ${workers}`);
  if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new RangeError(`batchSize must be a whole number >= 1, got ${options.batchSize}`);
  if (options.sources.length === 0) throw new NoUsableFileError('the dataset lists no source file');
  const share = options.share ?? WHOLE_BATCH;
  checkShare(share);
  const config: TaskConfig = {
    plan: {
      paths: options.sources.map((s) => s.path),
      repeats: options.sources.map((s) => s.repeat ?? 1),
      seed: options.seed,
      batchSize: options.batchSize,
      kind,
      onBadFile: options.onBadFile ?? 'skip',
      share,
    },
    sources: options.sources.map((s) => ({ preprocessing: s.preprocessing, ...(s.companions ? { companions: s.companions } : {}) })),
    cache: options.cacheDir === undefined ? undefined : { dir: options.cacheDir, dtype: options.cacheDtype, compression: options.cacheCompression },
  };
  const schedule = new EpochSchedule(config.plan.repeats, config.plan.seed);
  const start = options.startCursor ?? START_CURSOR;
  if (!(start.index >= 0 && start.index < schedule.epochLength && start.epoch >= 0 && start.step >= 0)) {
    throw new CursorMismatchError(
      `data cursor (epoch ${start.epoch}, index ${start.index}) does not fit a dataset of ${schedule.epochLength} entries per epoch`,
    );
  }
  const stream = new CursorStream(schedule, start, options.batchSize * share.size);
  const report = new BadFileReport(options.onWarning ?? ((line) => process.stderr.write(`voco: warning: ${line}\n`)));
  const prefetch = options.prefetch ?? Math.max(1, 2 * workers);
  if (!Number.isInteger(prefetch) || prefetch < 1) throw new RangeError(`prefetch must be a whole number >= 1, got ${prefetch}`);
  const dims = batchKindOps(kind).shapes(options.batchSize);
  return (workers === 0 ? new InlineLoader(config, stream, report, dims) : new WorkerLoader(config, stream, report, dims, workers, prefetch)) as unknown as BatchLoader<B>;
}

/** The cursor of every step: step k starts k * (global batch) entries after the start (bad files do not shift it). */
class CursorStream {
  readonly firstStep: number;
  private last: DataCursor;
  private readonly byStep = new Map<number, DataCursor>();

  constructor(private readonly schedule: EpochSchedule, start: DataCursor, private readonly globalBatch: number) {
    this.firstStep = start.step;
    this.last = start;
    this.byStep.set(start.step, start);
  }

  /** The cursor at the start of `step`; steps must be asked for in order, and each is forgotten once `after` ran. */
  at(step: number): DataCursor {
    while (this.last.step < step) {
      this.last = this.schedule.advance(this.last, this.globalBatch);
      this.byStep.set(this.last.step, this.last);
    }
    return this.byStep.get(step)!;
  }

  after(step: number): DataCursor {
    const next = this.at(step + 1);
    this.byStep.delete(step);
    return next;
  }
}

class BadFileReport {
  readonly files: SkippedFile[] = [];
  skipped = 0;
  private readonly seen = new Set<string>();

  constructor(private readonly warn: (line: string) => void) {}

  add(skipped: readonly SkippedFile[]): void {
    for (const file of skipped) {
      this.skipped++;
      if (this.seen.has(file.path)) continue;
      this.seen.add(file.path);
      this.files.push(file);
      this.warn(`skipping bad file ${file.path}: ${file.reason}`);
    }
  }
}

function failureError(failure: { kind: BatchFailure['kind']; message: string }): Error {
  return failure.kind === 'bad-file' ? new BadSourceFileError(failure.message) : new NoUsableFileError(failure.message);
}

type AnyBatch = Batch<BatchArrays>;
type Dims = Record<string, number[]>;

abstract class LoaderBase implements BatchLoader<AnyBatch> {
  constructor(protected readonly stream: CursorStream, protected readonly report: BadFileReport, private readonly dims: Dims) {}

  abstract next(): Promise<AnyBatch>;
  abstract close(): Promise<void>;

  get badFiles(): readonly SkippedFile[] {
    return this.report.files;
  }

  get skippedCount(): number {
    return this.report.skipped;
  }

  protected finish(built: BuiltBatch): AnyBatch {
    this.report.add(built.skipped);
    return { ...built.arrays, step: built.step, dims: this.dims, cursor: this.stream.after(built.step) } as AnyBatch;
  }
}

/** workers = 0: each batch is built when asked for, on the calling thread (for debugging and small runs). */
class InlineLoader extends LoaderBase {
  private readonly builder;
  private step: number;
  private failure: Error | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(config: TaskConfig, stream: CursorStream, report: BadFileReport, dims: Dims) {
    super(stream, report, dims);
    this.builder = createTaskBuilder(config);
    this.step = stream.firstStep;
  }

  next(): Promise<AnyBatch> {
    const step = this.step++;
    const result = this.queue.then(async () => {
      if (this.failure) throw this.failure;
      const built = await this.builder.build(this.stream.at(step));
      if (built instanceof BatchFailure) throw (this.failure = failureError(built));
      return this.finish(built);
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  async close(): Promise<void> {
    this.failure ??= new LoaderClosedError('the batch loader is closed');
  }
}

interface Waiter {
  readonly step: number;
  resolve(batch: AnyBatch): void;
  reject(error: Error): void;
}

/**
 * Worker threads build batches ahead of the consumer: at most `prefetch` steps are being built or wait unclaimed
 * (backpressure), results are handed out in step order whatever order they finish in, and tensors arrive as
 * transferred ArrayBuffers. A dead worker fails the loader at once instead of leaving `next()` waiting.
 */
class WorkerLoader extends LoaderBase {
  private readonly pool: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly ready = new Map<number, BuildReply>();
  private readonly waiters: Waiter[] = [];
  private nextRequested: number;
  private nextDispatched: number;
  private delivered: number;
  private failure: Error | undefined;
  private closing = false;

  constructor(config: TaskConfig, stream: CursorStream, report: BadFileReport, dims: Dims, workers: number, private readonly prefetch: number) {
    super(stream, report, dims);
    this.nextRequested = this.nextDispatched = this.delivered = stream.firstStep;
    for (let i = 0; i < workers; i++) this.pool.push(this.spawn(config));
    this.idle.push(...this.pool);
    this.pump();
    this.updateRefs();
  }

  next(): Promise<AnyBatch> {
    const step = this.nextRequested++;
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<AnyBatch>((resolve, reject) => {
      this.waiters.push({ step, resolve, reject });
      this.deliver();
      this.pump();
      this.updateRefs();
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    this.fail(new LoaderClosedError('the batch loader is closed'));
    await Promise.all(this.pool.map((w) => w.terminate()));
  }

  private spawn(config: TaskConfig): Worker {
    const worker = startWorker(join(__dirname, 'worker'), config);
    worker.on('message', (reply: BuildReply) => this.onReply(worker, reply));
    worker.on('error', (error) => this.fail(new LoaderWorkerCrashError(`data loader worker crashed: ${error.message}`)));
    worker.on('messageerror', (error) => this.fail(new LoaderWorkerCrashError(`data loader worker sent an unreadable message: ${error.message}`)));
    worker.on('exit', (code) => {
      if (!this.closing) this.fail(new LoaderWorkerCrashError(`data loader worker exited unexpectedly (exit code ${code})`));
    });
    return worker;
  }

  private onReply(worker: Worker, reply: BuildReply): void {
    if (this.failure) return;
    this.ready.set(reply.step, reply);
    this.idle.push(worker);
    this.deliver();
    this.pump();
    this.updateRefs();
  }

  /** Hands out finished steps in order; a failed step fails the loader only when its turn comes. */
  private deliver(): void {
    while (!this.failure && this.waiters.length > 0 && this.ready.has(this.waiters[0].step)) {
      const reply = this.ready.get(this.waiters[0].step)!;
      if (reply.type === 'failure') return this.fail(failureError(reply));
      const waiter = this.waiters.shift()!;
      this.ready.delete(waiter.step);
      this.delivered++;
      waiter.resolve(this.finish(reply));
    }
  }

  private pump(): void {
    while (!this.failure && this.idle.length > 0 && this.nextDispatched < this.delivered + this.prefetch) {
      const request: BuildRequest = { cursor: this.stream.at(this.nextDispatched++) };
      this.idle.shift()!.postMessage(request);
    }
  }

  /** Workers keep the process alive only while someone waits for a batch, so a forgotten close() cannot hang exit. */
  private updateRefs(): void {
    const waiting = this.waiters.length > 0 && !this.failure;
    for (const worker of this.pool) (waiting ? worker.ref() : worker.unref());
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
    this.ready.clear();
    this.updateRefs();
    if (!this.closing) for (const worker of this.pool) void worker.terminate();
  }
}
