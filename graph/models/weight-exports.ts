/**
 * The state-dict files every export writes beside its ONNX model: the upstream/MONAI state dict as safetensors and
 * as a `.pt` in the form upstream's trainers save (`{"state_dict": ...}`).
 */
import * as path from 'path';
import { writeSafetensors } from '../../io/weights/safetensors';
import type { NamedTensor } from '../../io/weights/tensor-map';
import { writeTorchCheckpoint } from '../../io/weights/torch-writer';

export const EXPORT_FORMATS = ['onnx', 'safetensors', 'pt'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Writes `<base>.safetensors` and/or `<base>.pt` into `dir`, as `formats` asks; returns the paths written. */
export function writeStateDictExports(dir: string, base: string, formats: readonly ExportFormat[], stateDict: () => NamedTensor[]): string[] {
  const written: string[] = [];
  if (formats.includes('safetensors')) {
    const file = path.join(dir, `${base}.safetensors`);
    writeSafetensors(file, stateDict());
    written.push(file);
  }
  if (formats.includes('pt')) {
    const file = path.join(dir, `${base}.pt`);
    writeTorchCheckpoint(file, stateDict());
    written.push(file);
  }
  return written;
}
