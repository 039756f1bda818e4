/**
 * Which part of each global batch a process reads in a data-parallel run. A step consumes `batchSize * size`
 * entries of the data stream after the step's cursor; slot k of rank r reads entry `r + k * size` (the striding of
 * PyTorch's DistributedSampler), so the ranks together read what one process with batch `batchSize * size` reads.
 */
export interface RankShare {
  readonly rank: number;
  /** Number of ranks. */
  readonly size: number;
}

/** One process reading whole batches. */
export const WHOLE_BATCH: RankShare = { rank: 0, size: 1 };

export function checkShare(share: RankShare): void {
  if (!(Number.isInteger(share.size) && share.size >= 1 && Number.isInteger(share.rank) && share.rank >= 0 && share.rank < share.size)) {
    throw new RangeError(`rank ${share.rank} of ${share.size} is not a valid rank`);
  }
}

/** Offset from the step's cursor of the `k`-th entry `share` reads (of its batch slots, or of its spares). */
export function shareOffset(share: RankShare, k: number): number {
  return share.rank + k * share.size;
}
