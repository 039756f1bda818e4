import { Rng } from '../../common/rng';

/**
 * Where the data stream stands: the next batch is step `step`, and its first volume is entry `index` of epoch
 * `epoch`'s shuffled order. Saved with a checkpoint, it lets a resumed run draw exactly the batches that an
 * uninterrupted run would have drawn.
 */
export interface DataCursor {
  readonly step: number;
  readonly epoch: number;
  readonly index: number;
}

export const START_CURSOR: DataCursor = { step: 0, epoch: 0, index: 0 };

/** A 32-bit seed from several integers (splitmix-style mixing), for generators that must not depend on call order. */
export function mixSeed(...parts: number[]): number {
  let h = 0x6a09e667;
  for (const part of parts) {
    const lo = part >>> 0;
    const hi = Math.floor(part / 4294967296) >>> 0;
    for (const word of [lo, hi]) {
      h = Math.imul(h ^ word, 0x9e3779b1) >>> 0;
      h = Math.imul(h ^ (h >>> 15), 0x85ebca6b) >>> 0;
      h = (h ^ (h >>> 13)) >>> 0;
    }
  }
  return h;
}

/**
 * The per-epoch shuffled order of a dataset whose source i appears `repeats[i]` times per epoch (upstream repeats
 * some dataset groups, e.g. abdomen x8). Each epoch is a seeded Fisher-Yates permutation of its own.
 */
export class EpochSchedule {
  readonly epochLength: number;
  private readonly base: Uint32Array;
  private cached: { epoch: number; order: Uint32Array } | undefined;

  constructor(repeats: readonly number[], private readonly seed: number) {
    for (const [i, r] of repeats.entries()) {
      if (!Number.isInteger(r) || r < 0) throw new RangeError(`repeat factor of source ${i} must be a whole number >= 0, got ${r}`);
    }
    this.epochLength = repeats.reduce((a, b) => a + b, 0);
    if (this.epochLength === 0) throw new RangeError('the dataset has no sources (or every repeat factor is 0)');
    this.base = new Uint32Array(this.epochLength);
    let at = 0;
    for (const [i, r] of repeats.entries()) for (let k = 0; k < r; k++) this.base[at++] = i;
  }

  order(epoch: number): Uint32Array {
    if (this.cached?.epoch !== epoch) {
      const order = this.base.slice();
      const rng = new Rng(mixSeed(this.seed, epoch, 0x5eed));
      for (let i = order.length - 1; i > 0; i--) {
        const j = rng.int(0, i);
        const t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
      this.cached = { epoch, order };
    }
    return this.cached.order;
  }

  /** The source index at `offset` entries after the cursor's position (crossing into later epochs). */
  sourceAt(cursor: DataCursor, offset: number): number {
    const p = this.position(cursor, offset);
    return this.order(p.epoch)[p.index];
  }

  /** The cursor of the batch after `cursor`, which consumed `count` entries. */
  advance(cursor: DataCursor, count: number): DataCursor {
    return { step: cursor.step + 1, ...this.position(cursor, count) };
  }

  private position(cursor: DataCursor, offset: number): { epoch: number; index: number } {
    const absolute = cursor.index + offset;
    return { epoch: cursor.epoch + Math.floor(absolute / this.epochLength), index: absolute % this.epochLength };
  }
}
