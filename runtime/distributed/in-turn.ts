import type { Communicator } from './communicator';

/**
 * Runs `prepare` on rank 0, then on the first rank of every other machine, then on the remaining ranks, one group
 * after the other. What it writes into shared folders (the artifacts, the phantom dataset) is then written once per
 * file system and found ready by the ranks after, instead of being written by several ranks at once.
 */
export function inTurnPerFileSystem<T>(comm: Communicator, prepare: () => T): T {
  if (comm.size === 1) return prepare();
  const turn = comm.rank === 0 ? 0 : comm.localRank === 0 ? 1 : 2;
  let result: T | undefined;
  for (let t = 0; t < 3; t++) {
    if (t === turn) result = prepare();
    comm.barrier();
  }
  return result!;
}
