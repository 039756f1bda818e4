/**
 * The process group a training run belongs to. Under `mpirun` it is Open MPI's MPI_COMM_WORLD (runtime/distributed/
 * mpi.ts, loaded on demand); otherwise it is a single process that needs no MPI at all (rank 0 of 1, collectives are
 * no-ops). Collectives block the calling thread until every rank has joined them; call them from the main thread.
 */
export type ReduceArray = Float32Array | Float64Array;

/** A reduction started by `startAllreduceSum`; `wait` blocks until its buffer holds the result. */
export interface PendingReduction {
  wait(): void;
}

/** Memory that MPI may keep using after the call that received it returns (native, never moved by the GC). */
export interface PinnedFloat32 {
  readonly array: Float32Array;
  free(): void;
}

export interface Communicator {
  readonly rank: number;
  readonly size: number;
  /** Rank among the processes on this node (the device to bind). */
  readonly localRank: number;
  readonly localSize: number;
  /** True when MPI is loaded (even with a world of 1). */
  readonly distributed: boolean;
  barrier(): void;
  /** Sums `array` element-wise over all ranks, in place. */
  allreduceSum(array: ReduceArray): void;
  /** Starts a non-blocking in-place sum of pinned memory; the buffer must not be touched until `wait` returns. */
  startAllreduceSum(buffer: PinnedFloat32): PendingReduction;
  /** Native memory for `startAllreduceSum`. */
  allocatePinned(length: number): PinnedFloat32;
  /** Minimum element-wise over all ranks, in place. */
  allreduceMin(array: Float64Array): void;
  /** Maximum element-wise over all ranks, in place. */
  allreduceMax(array: Float64Array): void;
  /** Every rank's `values` (all of the same length), rank after rank. */
  allgather(values: Float64Array): Float64Array;
  /** Overwrites `array` on every rank with its contents on `root`. */
  broadcast(array: ReduceArray | Uint8Array, root?: number): void;
  /**
   * Prints `message` on this rank's stderr and takes the whole job down with exit status `code` (MPI_Abort), so
   * the other ranks do not wait for this one forever.
   */
  abort(message: string, code?: number): never;
  /** Ends MPI; last call of a distributed run (a no-op for a single process). */
  finalize(): void;
}

/** The largest element count one MPI call takes (its count argument is a C int). */
export const MAX_MPI_COUNT = 0x7fffffff;

/** A process alone: rank 0 of a world of 1; every collective leaves its data as it is. */
export class SingleProcess implements Communicator {
  readonly rank = 0;
  readonly size = 1;
  readonly localRank = 0;
  readonly localSize = 1;
  readonly distributed = false;

  barrier(): void {}
  allreduceSum(): void {}
  startAllreduceSum(): PendingReduction {
    return { wait: () => undefined };
  }
  allocatePinned(length: number): PinnedFloat32 {
    return { array: new Float32Array(length), free: () => undefined };
  }
  allreduceMin(): void {}
  allreduceMax(): void {}
  allgather(values: Float64Array): Float64Array {
    return values.slice();
  }
  broadcast(): void {}
  abort(message: string, code = 1): never {
    process.stderr.write(`${message}\n`);
    process.exit(code);
  }
  finalize(): void {}
}

/** Overwrites `value` on every rank with rank `root`'s (JSON-serialisable) value and returns it. */
export function broadcastJson<T>(comm: Communicator, value: T, root = 0): T {
  if (comm.size === 1) return value;
  const bytes = comm.rank === root ? Buffer.from(JSON.stringify(value) ?? 'null', 'utf8') : Buffer.alloc(0);
  const length = new Float64Array([bytes.length]);
  comm.broadcast(length, root);
  const received = comm.rank === root ? bytes : Buffer.alloc(length[0]);
  comm.broadcast(received, root);
  return JSON.parse(received.toString('utf8')) as T;
}

/** The mean over ranks of a few numbers (e.g. losses for the log), in float64. */
export function meanOverRanks(comm: Communicator, values: readonly number[]): number[] {
  const sums = Float64Array.from(values);
  comm.allreduceSum(sums);
  return Array.from(sums, (v) => v / comm.size);
}
