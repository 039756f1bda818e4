import { Communicator, SingleProcess } from './communicator';
import type * as MpiModule from './mpi';

export interface OpenOptions {
  /** Use MPI even when the launcher's variables are absent (the CLI's --distributed). */
  readonly distributed?: boolean;
  /** Open MPI's library (default $VOCO_MPI_LIBRARY, else libmpi.so.40 from the loader's search path). */
  readonly library?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** True when an MPI launcher (Open MPI's mpirun, or a PMI/PMIx launcher such as srun) started this process. */
export function launchedByMpi(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.OMPI_COMM_WORLD_SIZE !== undefined || env.PMIX_RANK !== undefined || env.PMI_RANK !== undefined;
}

/**
 * MPI_COMM_WORLD when the process runs under mpirun (or `distributed` is set), else a single process. MPI (and the
 * FFI) is loaded only in the first case; when it is asked for but missing, this throws MpiUnavailableError.
 */
export function openCommunicator(options: OpenOptions = {}): Communicator {
  const env = options.env ?? process.env;
  if (!options.distributed && !launchedByMpi(env)) return new SingleProcess();
  // Loaded here, not at the top: a single-process run must not need koffi or libmpi.
  const mpi = require('./mpi') as typeof MpiModule;
  return mpi.MpiCommunicator.open(options.library ?? env.VOCO_MPI_LIBRARY ?? mpi.DEFAULT_MPI_LIBRARY);
}
