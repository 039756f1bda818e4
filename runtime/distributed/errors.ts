import { UserError } from '../../common/user-error';

export const OPEN_MPI_PACKAGES = 'apt-get install openmpi-bin libopenmpi-dev';

/** MPI was asked for (the job runs under mpirun, or --distributed) but Open MPI's library cannot be loaded. */
export class MpiUnavailableError extends UserError {
  constructor(library: string, reason: string) {
    super(`distributed training needs Open MPI, but ${library} cannot be loaded (${reason}); install it: ${OPEN_MPI_PACKAGES}`);
  }
}

/**
 * The ranks' parameters are no longer identical. Not a user mistake: the gradients or the optimizer no longer give
 * every rank the same result (a non-deterministic kernel, a rank that skipped a step alone, corrupted memory).
 */
export class ParameterDivergenceError extends Error {
  constructor(readonly step: number, readonly divergingRanks: readonly number[], detail: string) {
    const who = divergingRanks.length > 1 ? `ranks ${divergingRanks.join(', ')} differ` : `rank ${divergingRanks[0]} differs`;
    super(`parameters diverged across ranks at step ${step}: ${who} from rank 0 (${detail})`);
    this.name = 'ParameterDivergenceError';
  }
}

/** Parameters or gradients that do not have the same layout on every rank (different model or settings). */
export class RankMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RankMismatchError';
  }
}
