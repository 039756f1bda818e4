/** One entry point for weight files, whatever their format: `.safetensors`, or anything `torch.save` wrote. */
import { readSafetensors } from './safetensors';
import { MatchOptions, StateDictMatch, matchStateDict, normaliseStateDict } from './state-dict';
import { TensorMap } from './tensor-map';
import { readTorchCheckpoint } from './torch-reader';

/** The file's state dict under normalised keys (see normaliseKey), in file order. */
export function readWeightsFile(file: string): TensorMap {
  const root = file.toLowerCase().endsWith('.safetensors') ? readSafetensors(file) : readTorchCheckpoint(file);
  return normaliseStateDict(root, file);
}

/** Reads a weight file and matches it against the model's `{name: shape}`, as `load_state_dict` would. */
export function importWeights(
  file: string,
  modelShapes: ReadonlyMap<string, readonly number[]> | Readonly<Record<string, readonly number[]>>,
  options: Omit<MatchOptions, 'file'> = {},
): StateDictMatch {
  return matchStateDict(readWeightsFile(file), modelShapes, { ...options, file });
}
