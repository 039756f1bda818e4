/** Weight files in and out: safetensors, PyTorch checkpoints, and the matching of state dicts to the model. */
export { RefusedGlobalError, StateDictMismatchError, WeightFileError } from './errors';
export { writeFileAtomically } from '../../common/atomic-file';
export { importWeights, readWeightsFile } from './load-weights';
export { readSafetensors, readSafetensorsHeader, writeSafetensors } from './safetensors';
export type { SafetensorsEntry, SafetensorsHeader } from './safetensors';
export { describeMismatch, matchStateDict, normaliseKey, normaliseStateDict } from './state-dict';
export type { MatchOptions, ShapeMismatch, StateDictMatch } from './state-dict';
export * from './tensor-map';
export { TorchTensor, readTorchCheckpoint } from './torch-reader';
export { writeTorchCheckpoint } from './torch-writer';
export type { TorchWriteOptions } from './torch-writer';
