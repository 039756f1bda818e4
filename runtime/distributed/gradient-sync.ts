/**
 * Data-parallel synchronisation: gradients averaged over ranks after every backward pass (bucketed all-reduce, as
 * PyTorch's DistributedDataParallel does with its 25 MB buckets), parameters broadcast from rank 0 at the start,
 * and a periodic digest comparison that catches ranks whose parameters drifted apart.
 */
import { Communicator, PendingReduction, PinnedFloat32, ReduceArray } from './communicator';
import { ParameterDivergenceError, RankMismatchError } from './errors';

export const DEFAULT_BUCKET_BYTES = 25 * 1024 * 1024;

export interface GradientSyncOptions {
  /** Size of one all-reduce bucket (default 25 MiB, as DistributedDataParallel); a larger gradient gets its own. */
  readonly bucketBytes?: number;
  /**
   * Start each bucket's reduction (MPI_Iallreduce) as soon as it is packed and wait for them all at the end.
   * Default false: one blocking MPI_Allreduce per bucket, which measured faster with Open MPI 4.1 (see
   * docs/performance.md, "Distributed"): its non-blocking all-reduce uses slower algorithms than the blocking one
   * and progresses only while the process is inside an MPI call, and after the backward pass there is no compute
   * left to hide the transfers behind.
   */
  readonly overlap?: boolean;
}

/** Float32 gradients packed together: gradient indices[j] at offsets[j] of the buffer. */
interface Bucket {
  readonly indices: readonly number[];
  readonly offsets: readonly number[];
  readonly buffer: PinnedFloat32;
}

interface Plan {
  readonly lengths: readonly number[];
  readonly kinds: string;
  readonly buckets: readonly Bucket[];
  /** Float64 gradients (test models), reduced where they lie. */
  readonly float64: readonly number[];
}

/**
 * Averages gradients over the ranks in place. Float32 gradients travel packed in buckets of native memory (fewer,
 * larger messages: Open MPI reduced 140 separate 1.6 MB tensors 1.6x slower than one buffer of the same total);
 * float64 gradients (test models) are reduced where they lie; everything is scaled by 1/world. The layout is fixed
 * by the first call and checked against every rank's, so a rank with another model fails at once instead of mixing
 * unrelated numbers.
 */
export class GradientSync {
  private readonly bucketElements: number;
  private readonly overlap: boolean;
  private plan: Plan | undefined;

  constructor(private readonly comm: Communicator, options: GradientSyncOptions = {}) {
    const bytes = options.bucketBytes ?? DEFAULT_BUCKET_BYTES;
    if (!(bytes >= 4)) throw new RangeError(`bucketBytes must be at least 4, got ${bytes}`);
    this.bucketElements = Math.floor(bytes / 4);
    this.overlap = options.overlap ?? false;
  }

  /** Replaces every gradient by its mean over the ranks. */
  average(gradients: Iterable<ReduceArray>): void {
    if (this.comm.size === 1) return;
    const arrays = [...gradients];
    const plan = this.planFor(arrays);
    const scale = 1 / this.comm.size;
    const pending: PendingReduction[] = [];
    for (const bucket of plan.buckets) {
      pack(bucket, arrays);
      if (this.overlap) pending.push(this.comm.startAllreduceSum(bucket.buffer));
      else {
        this.comm.allreduceSum(bucket.buffer.array);
        unpack(bucket, arrays, scale);
      }
    }
    for (const i of plan.float64) {
      const g = arrays[i];
      this.comm.allreduceSum(g);
      scaleInPlace(g, scale);
    }
    for (const [j, reduction] of pending.entries()) {
      reduction.wait();
      unpack(plan.buckets[j], arrays, scale);
    }
  }

  /** Frees the buckets' native memory. */
  dispose(): void {
    for (const b of this.plan?.buckets ?? []) b.buffer.free();
    this.plan = undefined;
  }

  private planFor(arrays: readonly ReduceArray[]): Plan {
    const lengths = arrays.map((a) => a.length);
    const kinds = arrays.map((a) => (a instanceof Float32Array ? 'f' : 'd')).join('');
    if (this.plan && this.plan.kinds === kinds && sameNumbers(this.plan.lengths, lengths)) return this.plan;
    this.dispose();
    checkSameLayoutOnAllRanks(this.comm, lengths, kinds);
    const buckets: Bucket[] = [];
    const float64: number[] = [];
    let open: { indices: number[]; offsets: number[]; filled: number } | undefined;
    const close = (): void => {
      if (open) buckets.push({ indices: open.indices, offsets: open.offsets, buffer: this.comm.allocatePinned(open.filled) });
      open = undefined;
    };
    for (const [i, n] of lengths.entries()) {
      if (kinds[i] === 'd') {
        float64.push(i);
        continue;
      }
      if (open && open.filled + n > this.bucketElements) close();
      open ??= { indices: [], offsets: [], filled: 0 };
      open.indices.push(i);
      open.offsets.push(open.filled);
      open.filled += n;
    }
    close();
    this.plan = { lengths, kinds, buckets, float64 };
    return this.plan;
  }
}

function pack(bucket: Bucket, arrays: readonly ReduceArray[]): void {
  for (const [j, i] of bucket.indices.entries()) bucket.buffer.array.set(arrays[i], bucket.offsets[j]);
}

/** Copies each sum back and scales it there (a copy then an in-cache pass: faster than one combined loop). */
function unpack(bucket: Bucket, arrays: readonly ReduceArray[], scale: number): void {
  const source = bucket.buffer.array;
  for (const [j, i] of bucket.indices.entries()) {
    const target = arrays[i];
    const at = bucket.offsets[j];
    target.set(source.subarray(at, at + target.length));
    scaleInPlace(target, scale);
  }
}

function scaleInPlace(array: ReduceArray, scale: number): void {
  for (let k = 0; k < array.length; k++) array[k] *= scale;
}

/** All ranks must reduce the same list of arrays; differing lists would pair unrelated numbers (or hang MPI). */
function checkSameLayoutOnAllRanks(comm: Communicator, lengths: readonly number[], kinds: string): void {
  const total = lengths.reduce((a, b) => a + b, 0);
  const mine = new Float64Array([lengths.length, total, layoutHash(lengths, kinds)]);
  const all = comm.allgather(mine);
  const differing: number[] = [];
  for (let r = 1; r < comm.size; r++) if (!sameNumbers(all.subarray(3 * r, 3 * r + 3), all.subarray(0, 3))) differing.push(r);
  if (differing.length > 0) {
    const describe = (r: number): string => `rank ${r}: ${all[3 * r]} arrays, ${all[3 * r + 1]} values`;
    throw new RankMismatchError(
      `gradients differ in layout across ranks (${[0, ...differing].map(describe).join('; ')}): every rank must train the same model`,
    );
  }
}

function layoutHash(lengths: readonly number[], kinds: string): number {
  let h = 0x811c9dc5;
  for (const [i, n] of lengths.entries()) {
    h = Math.imul(h ^ (n >>> 0), 0x01000193) >>> 0;
    h = Math.imul(h ^ Math.floor(n / 4294967296), 0x01000193) >>> 0;
    h = Math.imul(h ^ kinds.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h;
}

function sameNumbers(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Makes every rank start from rank 0's values: overwrites `arrays` in place on the other ranks. */
export function broadcastParameters(comm: Communicator, arrays: Iterable<ReduceArray>): void {
  if (comm.size === 1) return;
  const list = [...arrays];
  checkSameLayoutOnAllRanks(comm, list.map((a) => a.length), list.map((a) => (a instanceof Float32Array ? 'f' : 'd')).join(''));
  for (const a of list) comm.broadcast(a, 0);
}

/**
 * A fingerprint of the parameters' exact bits: an FNV-1a hash over every 32-bit word (order-sensitive) and the
 * float64 sum of the values (to show how far apart diverged ranks are).
 */
export function parameterDigest(arrays: Iterable<ReduceArray>): { hash: number; sum: number } {
  let hash = 0x811c9dc5;
  let sum = 0;
  for (const a of arrays) {
    const words = new Uint32Array(a.buffer, a.byteOffset, a.byteLength / 4);
    for (let i = 0; i < words.length; i++) hash = Math.imul(hash ^ words[i], 0x01000193);
    for (let i = 0; i < a.length; i++) sum += a[i];
  }
  return { hash: hash >>> 0, sum };
}

/**
 * Compares the parameters' digest across ranks (a collective: every rank calls it at the same step) and throws
 * ParameterDivergenceError on every rank, naming the ranks that differ from rank 0, when they are not identical.
 */
export function checkParametersAgree(comm: Communicator, arrays: Iterable<ReduceArray>, step: number): void {
  if (comm.size === 1) return;
  const { hash, sum } = parameterDigest(arrays);
  const all = comm.allgather(new Float64Array([hash, sum]));
  const diverging: number[] = [];
  for (let r = 1; r < comm.size; r++) if (all[2 * r] !== all[0]) diverging.push(r);
  if (diverging.length > 0) {
    const sums = [0, ...diverging].map((r) => `rank ${r} sum ${all[2 * r + 1]}`).join(', ');
    throw new ParameterDivergenceError(step, diverging, sums);
  }
}
