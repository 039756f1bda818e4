/**
 * Which volumes each rank reads: PyTorch's DistributedSampler rule. An epoch's order is shuffled from a seed shared
 * by all ranks (and the epoch), padded to a multiple of the world size by repeating its start, and rank r takes
 * positions r, r + world, r + 2 world, ...
 *
 * Training reads a continuous stream (data/loader/schedule.ts: epochs follow each other without a break, so the
 * batch shape never changes). There a global step takes the next `localBatch * world` entries after the global data
 * cursor and rank r takes entries r, r + world, ... of them: the same striding applied to the stream, with no padding
 * needed (no epoch ends early). The cursor counts global entries, so a run saved with N ranks resumes with M ranks at
 * the same place in the data; together the ranks read exactly what one process with batch `localBatch * world` reads.
 */
import { DataCursor, EpochSchedule } from '../../data/loader/schedule';
import { checkShare, RankShare, shareOffset } from '../../data/loader/share';

export type { RankShare } from '../../data/loader/share';

export interface SamplerEpoch {
  readonly epoch: number;
  /** Shared by all ranks; the order of epoch e is drawn from (seed, e). */
  readonly seed: number;
  /** Default true; false keeps the dataset order. */
  readonly shuffle?: boolean;
}

/** The order of the dataset's entries in `epoch`: a permutation of 0..length-1 drawn from (seed, epoch). */
export function epochOrder(length: number, seed: number, epoch: number): Uint32Array {
  return new EpochSchedule(new Array<number>(length).fill(1), seed).order(epoch).slice();
}

/**
 * The dataset indices rank `share.rank` reads in one epoch, as torch.utils.data.DistributedSampler(drop_last=False)
 * gives them: ceil(length / world) indices per rank.
 */
export function distributedSamplerIndices(length: number, share: RankShare, epoch: SamplerEpoch): Uint32Array {
  checkShare(share);
  if (!Number.isInteger(length) || length < 1) throw new RangeError(`dataset length must be a whole number >= 1, got ${length}`);
  const order = epoch.shuffle === false ? Uint32Array.from({ length }, (_, i) => i) : epochOrder(length, epoch.seed, epoch.epoch);
  const perRank = Math.ceil(length / share.size);
  const out = new Uint32Array(perRank);
  // Position p of the padded order is order[p mod length]: the padding repeats the order from its start.
  for (let k = 0; k < perRank; k++) out[k] = order[(share.rank + k * share.size) % length];
  return out;
}

/** Entries one global step takes from the stream. */
export function globalBatchSize(localBatch: number, share: RankShare): number {
  return localBatch * share.size;
}

/** Offsets from the global step's cursor of the entries `share.rank` reads, in its batch slot order. */
export function rankOffsets(localBatch: number, share: RankShare): number[] {
  checkShare(share);
  if (!Number.isInteger(localBatch) || localBatch < 1) throw new RangeError(`batch size must be a whole number >= 1, got ${localBatch}`);
  return Array.from({ length: localBatch }, (_, slot) => shareOffset(share, slot));
}

export interface RankBatch {
  /** The entries (source indices of the schedule) this rank reads, slot by slot. */
  readonly sources: number[];
  /** Their offsets from `cursor` in the global batch: use them (not the local slot) to seed per-entry randomness. */
  readonly offsets: number[];
  /** The global cursor after this step, the same on every rank. */
  readonly next: DataCursor;
}

/** This rank's share of the global step that starts at `cursor`. */
export function rankBatch(schedule: EpochSchedule, cursor: DataCursor, localBatch: number, share: RankShare): RankBatch {
  const offsets = rankOffsets(localBatch, share);
  return {
    sources: offsets.map((o) => schedule.sourceAt(cursor, o)),
    offsets,
    next: schedule.advance(cursor, globalBatchSize(localBatch, share)),
  };
}
