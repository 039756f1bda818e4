/**
 * A rank that fails must take the whole job down: the other ranks would otherwise wait in their next collective
 * forever. The failing rank prints why, then calls MPI_Abort, and mpirun ends every rank with a non-zero status.
 */
import { UserError } from '../../common/user-error';
import { Communicator } from './communicator';

/** What the failing rank prints before taking the job down. */
export function failureMessage(rank: number, error: unknown): string {
  const line = `rank ${rank} failed: ${error instanceof Error ? error.message : String(error)}; aborting the job`;
  // A user mistake is said in one line; anything else also gets its stack, below that line.
  const stack = error instanceof Error && !(error instanceof UserError) ? error.stack : undefined;
  return stack ? `${line}\n${stack}` : line;
}

/**
 * Runs one rank's work. In a distributed job, an error (thrown, rejected, or uncaught elsewhere in the process)
 * aborts the job with `failureMessage`, and success ends with MPI_Finalize. A single process gets the error back
 * as it was, for the CLI to report.
 */
export async function runRank<T>(comm: Communicator, work: () => Promise<T>): Promise<T> {
  if (comm.size === 1 && !comm.distributed) return work();
  const fail = (error: unknown): never => comm.abort(failureMessage(comm.rank, error));
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  try {
    const result = await work();
    comm.finalize();
    return result;
  } catch (error) {
    return fail(error);
  } finally {
    process.off('uncaughtException', fail);
    process.off('unhandledRejection', fail);
  }
}
