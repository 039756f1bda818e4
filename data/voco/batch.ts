import type { Rng } from '../../common/rng';
import type { Volume } from '../volume';
import { DEFAULT_VOCO, type VocoSamplingOptions } from './options';
import { sampleVoco, type VocoSampleArrays, type VocoSampleLayout } from './sample';

/** Shapes of the model's inputs for `batchSize` volumes (volume-major: entry b * swBatchSize + s, b * grid^2 + k). */
export function vocoBatchShapes(batchSize: number, o: VocoSamplingOptions = DEFAULT_VOCO): Record<keyof VocoSampleArrays, number[]> {
  const { roi, grid, swBatchSize } = o;
  return {
    images: [batchSize * swBatchSize, 1, roi, roi, roi],
    crops: [batchSize * grid * grid, 1, roi, roi, roi],
    labels: [batchSize, swBatchSize, grid * grid],
  };
}

export interface VocoSampleBatch extends VocoSampleArrays {
  readonly layouts: readonly VocoSampleLayout[];
}

/**
 * A batch of `volumes.length` samples, volume b drawn with `rngs[b]`, written straight into the batch arrays.
 * Derive each rng from (seed, step, slot) alone so that the batch does not depend on who builds it, or when.
 */
export function sampleVocoBatch(volumes: readonly Volume[], rngs: readonly Rng[], o: VocoSamplingOptions = DEFAULT_VOCO): VocoSampleBatch {
  if (rngs.length !== volumes.length) throw new RangeError(`${volumes.length} volumes need as many generators, got ${rngs.length}`);
  const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
  const shapes = vocoBatchShapes(volumes.length, o);
  const images = new Float32Array(size(shapes.images));
  const crops = new Float32Array(size(shapes.crops));
  const labels = new Float32Array(size(shapes.labels));
  const part = (array: Float32Array, b: number): Float32Array => {
    const n = array.length / volumes.length;
    return array.subarray(b * n, (b + 1) * n);
  };
  const layouts = volumes.map(
    (v, b) => sampleVoco(v, rngs[b], o, { images: part(images, b), crops: part(crops, b), labels: part(labels, b) }).layout,
  );
  return { images, crops, labels, layouts };
}
