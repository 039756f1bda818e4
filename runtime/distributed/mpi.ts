/**
 * MPI_COMM_WORLD of Open MPI (libmpi.so.40, Open MPI 4 and 5), reached through koffi. Loaded only when a run is
 * distributed. Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are the addresses of exported objects
 * (`ompi_mpi_comm_world`, ...), MPI_IN_PLACE is (void *) 1 and MPI_STATUS_IGNORE is NULL; other MPI libraries (MPICH,
 * Intel MPI) have another ABI and are refused.
 */
import { writeSync } from 'node:fs';
import * as koffi from 'koffi';
import { Communicator, MAX_MPI_COUNT, PendingReduction, PinnedFloat32, ReduceArray } from './communicator';
import { MpiUnavailableError } from './errors';

export const DEFAULT_MPI_LIBRARY = 'libmpi.so.40';

const MPI_THREAD_FUNNELED = 1;
const MPI_COMM_TYPE_SHARED = 0;
const MPI_IN_PLACE = 1n;
const MPI_STATUS_IGNORE = null;

type Handle = bigint;
type Buffer = ReduceArray | Uint8Array | Handle;

interface MpiFunctions {
  initialized(flag: number[]): number;
  finalized(flag: number[]): number;
  initThread(argc: null, argv: null, required: number, provided: number[]): number;
  commRank(comm: Handle, out: number[]): number;
  commSize(comm: Handle, out: number[]): number;
  commSplitType(comm: Handle, splitType: number, key: number, info: Handle, newComm: Handle): number;
  commFree(comm: Handle): number;
  barrier(comm: Handle): number;
  allreduce(send: Buffer, recv: Buffer, count: number, type: Handle, op: Handle, comm: Handle): number;
  iallreduce(send: Buffer, recv: Buffer, count: number, type: Handle, op: Handle, comm: Handle, request: Handle): number;
  wait(request: Handle, status: null): number;
  bcast(buffer: Buffer, count: number, type: Handle, root: number, comm: Handle): number;
  allgather(send: Buffer, sendCount: number, sendType: Handle, recv: Buffer, recvCount: number, recvType: Handle, comm: Handle): number;
  abort(comm: Handle, code: number): number;
  finalize(): number;
}

interface Handles {
  world: Handle;
  infoNull: Handle;
  float: Handle;
  double: Handle;
  byte: Handle;
  sum: Handle;
  min: Handle;
  max: Handle;
}

export class MpiCommunicator implements Communicator {
  readonly distributed = true;
  private finalized = false;

  private constructor(
    private readonly mpi: MpiFunctions,
    private readonly h: Handles,
    readonly rank: number,
    readonly size: number,
    readonly localRank: number,
    readonly localSize: number,
  ) {}

  /** Loads `library`, initialises MPI (once per process) and returns MPI_COMM_WORLD. */
  static open(library = DEFAULT_MPI_LIBRARY): MpiCommunicator {
    let lib: koffi.LibraryHandle;
    try {
      // Open MPI's plugins resolve symbols of libmpi itself: load it with global visibility.
      lib = koffi.load(library, { global: true });
    } catch (e) {
      throw new MpiUnavailableError(library, firstLine(e));
    }
    const h = handles(lib, library);
    const mpi = functions(lib);
    const flag = [0];
    check(mpi.initialized(flag), 'MPI_Initialized');
    if (!flag[0]) {
      const provided = [0];
      check(mpi.initThread(null, null, MPI_THREAD_FUNNELED, provided), 'MPI_Init_thread');
    }
    const rank = [0];
    const size = [0];
    check(mpi.commRank(h.world, rank), 'MPI_Comm_rank');
    check(mpi.commSize(h.world, size), 'MPI_Comm_size');
    const local = localPlacement(mpi, h, rank[0]);
    return new MpiCommunicator(mpi, h, rank[0], size[0], local.rank, local.size);
  }

  barrier(): void {
    check(this.mpi.barrier(this.h.world), 'MPI_Barrier');
  }

  allreduceSum(array: ReduceArray): void {
    this.allreduce(array, this.h.sum);
  }

  allreduceMin(array: Float64Array): void {
    this.allreduce(array, this.h.min);
  }

  allreduceMax(array: Float64Array): void {
    this.allreduce(array, this.h.max);
  }

  allocatePinned(length: number): PinnedFloat32 {
    if (length > MAX_MPI_COUNT) throw new RangeError(`a pinned buffer holds at most ${MAX_MPI_COUNT} floats, asked for ${length}`);
    const pointer = koffi.alloc('float', Math.max(1, length));
    const array = new Float32Array(koffi.view(pointer, Math.max(1, length) * 4), 0, length);
    let freed = false;
    pinnedPointers.set(array, pointer);
    return {
      array,
      free: () => {
        if (freed) return;
        freed = true;
        pinnedPointers.delete(array);
        koffi.free(pointer);
      },
    };
  }

  startAllreduceSum(buffer: PinnedFloat32): PendingReduction {
    const pointer = pinnedPointers.get(buffer.array);
    if (pointer === undefined) throw new Error('startAllreduceSum needs a live buffer from allocatePinned');
    const request = koffi.alloc('void *', 1);
    check(this.mpi.iallreduce(MPI_IN_PLACE, pointer, buffer.array.length, this.h.float, this.h.sum, this.h.world, request), 'MPI_Iallreduce');
    let done = false;
    return {
      wait: () => {
        if (done) return;
        done = true;
        try {
          check(this.mpi.wait(request, MPI_STATUS_IGNORE), 'MPI_Wait');
        } finally {
          koffi.free(request);
        }
      },
    };
  }

  allgather(values: Float64Array): Float64Array {
    const out = new Float64Array(values.length * this.size);
    check(this.mpi.allgather(values, values.length, this.h.double, out, values.length, this.h.double, this.h.world), 'MPI_Allgather');
    return out;
  }

  broadcast(array: ReduceArray | Uint8Array, root = 0): void {
    const type = array instanceof Float32Array ? this.h.float : array instanceof Float64Array ? this.h.double : this.h.byte;
    forChunks(array, (part) => check(this.mpi.bcast(part, part.length, type, root, this.h.world), 'MPI_Bcast'));
  }

  abort(message: string, code = 1): never {
    writeSync(2, `${message}\n`);
    this.mpi.abort(this.h.world, code);
    process.exit(code);
  }

  finalize(): void {
    if (this.finalized) return;
    this.finalized = true;
    const flag = [0];
    check(this.mpi.finalized(flag), 'MPI_Finalized');
    if (!flag[0]) check(this.mpi.finalize(), 'MPI_Finalize');
  }

  private allreduce(array: ReduceArray, op: Handle): void {
    const type = array instanceof Float32Array ? this.h.float : this.h.double;
    forChunks(array, (part) => check(this.mpi.allreduce(MPI_IN_PLACE, part, part.length, type, op, this.h.world), 'MPI_Allreduce'));
  }
}

/** Native addresses of the pinned buffers handed out, by their views. */
const pinnedPointers = new WeakMap<Float32Array, Handle>();

function handles(lib: koffi.LibraryHandle, library: string): Handles {
  const symbol = (name: string): Handle => {
    try {
      return lib.symbol(name) as Handle;
    } catch {
      throw new MpiUnavailableError(library, `it is not Open MPI: it lacks ${name}`);
    }
  };
  return {
    world: symbol('ompi_mpi_comm_world'),
    infoNull: symbol('ompi_mpi_info_null'),
    float: symbol('ompi_mpi_float'),
    double: symbol('ompi_mpi_double'),
    byte: symbol('ompi_mpi_byte'),
    sum: symbol('ompi_mpi_op_sum'),
    min: symbol('ompi_mpi_op_min'),
    max: symbol('ompi_mpi_op_max'),
  };
}

function functions(lib: koffi.LibraryHandle): MpiFunctions {
  return {
    initialized: lib.func('int MPI_Initialized(_Out_ int *flag)'),
    finalized: lib.func('int MPI_Finalized(_Out_ int *flag)'),
    initThread: lib.func('int MPI_Init_thread(void *argc, void *argv, int required, _Out_ int *provided)'),
    commRank: lib.func('int MPI_Comm_rank(void *comm, _Out_ int *rank)'),
    commSize: lib.func('int MPI_Comm_size(void *comm, _Out_ int *size)'),
    commSplitType: lib.func('int MPI_Comm_split_type(void *comm, int splitType, int key, void *info, void *newComm)'),
    commFree: lib.func('int MPI_Comm_free(void *comm)'),
    barrier: lib.func('int MPI_Barrier(void *comm)'),
    allreduce: lib.func('int MPI_Allreduce(const void *send, void *recv, int count, void *type, void *op, void *comm)'),
    iallreduce: lib.func('int MPI_Iallreduce(const void *send, void *recv, int count, void *type, void *op, void *comm, void *request)'),
    wait: lib.func('int MPI_Wait(void *request, void *status)'),
    bcast: lib.func('int MPI_Bcast(void *buffer, int count, void *type, int root, void *comm)'),
    allgather: lib.func('int MPI_Allgather(const void *send, int sendCount, void *sendType, void *recv, int recvCount, void *recvType, void *comm)'),
    abort: lib.func('int MPI_Abort(void *comm, int code)'),
    finalize: lib.func('int MPI_Finalize()'),
  };
}

/**
 * Where this rank sits among the ranks of its machine (which GPU it takes): its rank in the communicator of the
 * ranks that share memory with it (MPI_COMM_TYPE_SHARED), whatever launcher started the job.
 */
function localPlacement(mpi: MpiFunctions, h: Handles, worldRank: number): { rank: number; size: number } {
  const node = koffi.alloc('void *', 1);
  try {
    check(mpi.commSplitType(h.world, MPI_COMM_TYPE_SHARED, worldRank, h.infoNull, node), 'MPI_Comm_split_type');
    const comm = koffi.decode(node, 'void *') as Handle;
    const rank = [0];
    const size = [0];
    check(mpi.commRank(comm, rank), 'MPI_Comm_rank');
    check(mpi.commSize(comm, size), 'MPI_Comm_size');
    check(mpi.commFree(node), 'MPI_Comm_free');
    return { rank: rank[0], size: size[0] };
  } finally {
    koffi.free(node);
  }
}

function forChunks<T extends ReduceArray | Uint8Array>(array: T, call: (part: T) => void): void {
  for (let at = 0; at < array.length; at += MAX_MPI_COUNT) call(array.subarray(at, Math.min(array.length, at + MAX_MPI_COUNT)) as T);
}

function check(code: number, call: string): void {
  if (code !== 0) throw new Error(`${call} failed with MPI error code ${code}`);
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}
