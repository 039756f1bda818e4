/** Data-parallel training over Open MPI; see docs/distributed.md. Nothing here loads MPI until openCommunicator. */
export type { Communicator } from './communicator';
export { SingleProcess, broadcastJson, meanOverRanks } from './communicator';
export type { DataParallelOptions } from './data-parallel';
export { DataParallel, DEFAULT_DIGEST_EVERY, floatArrays } from './data-parallel';
export { MpiUnavailableError, ParameterDivergenceError, RankMismatchError } from './errors';
export { failureMessage, runRank } from './failure';
export type { GradientSyncOptions } from './gradient-sync';
export { GradientSync, broadcastParameters, checkParametersAgree, parameterDigest } from './gradient-sync';
export type { OpenOptions } from './open';
export { launchedByMpi, openCommunicator } from './open';
export type { RankBatch, RankShare } from './sampler';
export { distributedSamplerIndices, epochOrder, globalBatchSize, rankBatch, rankOffsets } from './sampler';
