import { Rng } from '../../common/rng';
import { UserError } from '../../common/user-error';
import type { Volume } from '../volume';
import type { BatchArrays, BatchKind, BatchKindOps } from './batch-kinds';
import { DataCursor, EpochSchedule, mixSeed } from './schedule';
import { RankShare, shareOffset } from './share';

/** A source's preprocessed value (a Volume, or an image/label pair), or why it is bad. */
export type FetchResult<V = Volume> = { readonly ok: true; readonly volume: V } | { readonly ok: false; readonly reason: string };

export interface SkippedFile {
  readonly path: string;
  readonly reason: string;
}

export interface BuiltBatch {
  readonly step: number;
  readonly arrays: BatchArrays;
  /** Bad files met while filling this batch (each replaced by a later entry of the order). */
  readonly skipped: readonly SkippedFile[];
}

export interface BatchPlan {
  readonly paths: readonly string[];
  readonly repeats: readonly number[];
  readonly seed: number;
  readonly batchSize: number;
  readonly kind: BatchKind;
  readonly onBadFile: 'skip' | 'fail';
  /** This process's part of each global batch (one process: the whole batch). */
  readonly share: RankShare;
}

/** A bad file under `onBadFile: 'fail'`, or a dataset whose files are all bad. */
export class BatchFailure {
  constructor(
    readonly kind: 'bad-file' | 'no-usable-file',
    readonly message: string,
  ) {}
}

/**
 * Builds this process's batch of one step. Everything random comes from (seed, step, position of the slot in the
 * global batch), and which volume fills a slot depends only on the cursor and on which files are bad, so the batch
 * does not depend on which worker builds it or when, nor on how the global batch is split over ranks. Slot i of
 * rank r takes entry `r + i * ranks` after the cursor; a bad entry is replaced by the rank's share of the entries
 * after the global batch (so a replacement may also appear in the following batch, with different random crops).
 */
export class BatchBuilder<V> {
  private readonly schedule: EpochSchedule;
  private readonly knownBad = new Map<number, string>();
  private readonly sourcesInUse: number;

  constructor(
    private readonly plan: BatchPlan,
    private readonly ops: BatchKindOps<V>,
    private readonly fetch: (sourceIndex: number) => Promise<FetchResult<V>>,
  ) {
    this.schedule = new EpochSchedule(plan.repeats, plan.seed);
    this.sourcesInUse = plan.repeats.filter((r) => r > 0).length;
  }

  async build(cursor: DataCursor): Promise<BuiltBatch | BatchFailure> {
    const { batchSize, share } = this.plan;
    const globalBatch = batchSize * share.size;
    const arrays = Object.fromEntries(
      Object.entries(this.ops.shapes(batchSize)).map(([name, shape]) => [name, new Float32Array(shape.reduce((a, b) => a * b))]),
    );
    const slotOf = (slot: number): BatchArrays =>
      Object.fromEntries(
        Object.entries(arrays).map(([name, array]) => {
          const n = array.length / batchSize;
          return [name, array.subarray(slot * n, (slot + 1) * n)];
        }),
      );
    const skipped: SkippedFile[] = [];
    let spare = 0;
    for (let slot = 0; slot < batchSize; slot++) {
      const position = shareOffset(share, slot);
      for (let offset = position; ; offset = globalBatch + shareOffset(share, spare++)) {
        const source = this.schedule.sourceAt(cursor, offset);
        const reason = await this.fill(source, new Rng(mixSeed(this.plan.seed, cursor.step, position)), slotOf(slot));
        if (reason === undefined) break;
        const path = this.plan.paths[source];
        if (this.plan.onBadFile === 'fail') return new BatchFailure('bad-file', `${path}: ${reason}`);
        skipped.push({ path, reason });
        if (this.knownBad.size === this.sourcesInUse) {
          return new BatchFailure('no-usable-file', `none of the ${this.sourcesInUse} source files is usable (last: ${path}: ${reason})`);
        }
      }
    }
    return { step: cursor.step, arrays, skipped };
  }

  /**
   * Fills a slot from `source`; returns why the source is bad when it cannot. A user-level error of the sampler
   * (SegmentationSampleError: a pair with nothing to centre a crop on) makes the source bad as an unreadable file
   * does; it is not recorded in the cache, whose entry (the preprocessed pair) is sound and serves other settings.
   */
  private async fill(source: number, rng: Rng, out: BatchArrays): Promise<string | undefined> {
    const fetched = await this.fetchOnce(source);
    if (!fetched.ok) return fetched.reason;
    const path = this.plan.paths[source];
    try {
      this.ops.sample(fetched.volume, rng, out, path);
      return undefined;
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      const reason = error.message.startsWith(`${path}: `) ? error.message.slice(path.length + 2) : error.message;
      this.knownBad.set(source, reason);
      return reason;
    }
  }

  private async fetchOnce(source: number): Promise<FetchResult<V>> {
    const reason = this.knownBad.get(source);
    if (reason !== undefined) return { ok: false, reason };
    const fetched = await this.fetch(source);
    if (!fetched.ok) this.knownBad.set(source, fetched.reason);
    return fetched;
  }
}
