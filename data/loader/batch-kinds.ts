/**
 * What a loader's batches hold and how one volume fills its slot: VoCo pre-training (a volume, its random and base
 * crops with their overlap labels) or segmentation fine-tuning (an image/label pair, `numSamples` crops of both).
 * A kind travels to the workers as data (structured clone); `batchKindOps` gives its shapes and sampler there.
 */
import type { Rng } from '../../common/rng';
import type { CachedPair } from '../cache/format';
import { candidateClasses, cropCandidates } from '../segmentation/centers';
import type { SegmentationSampleOptions } from '../segmentation/options';
import { sampleSegmentation } from '../segmentation/sample';
import type { Volume } from '../volume';
import { vocoBatchShapes } from '../voco/batch';
import type { VocoSamplingOptions } from '../voco/options';
import { sampleVoco } from '../voco/sample';

export type BatchKind =
  | { readonly kind: 'voco'; readonly voco: VocoSamplingOptions }
  | { readonly kind: 'segmentation'; readonly segmentation: SegmentationSampleOptions };

/** A batch's arrays by input name, each holding `batchSize` equal slots one after another (volume-major). */
export type BatchArrays = Readonly<Record<string, Float32Array>>;

/** The value a source's cache entry holds for each kind. */
export type KindValue<K extends BatchKind> = K extends { kind: 'voco' } ? Volume : CachedPair;

export interface BatchKindOps<V> {
  shapes(batchSize: number): Record<string, number[]>;
  /**
   * Fills one slot (`out`: views of that slot of every array) from `value` with `rng`; a UserError says the value
   * cannot be sampled (the loader then treats its source as a bad file).
   */
  sample(value: V, rng: Rng, out: BatchArrays, source: string): void;
}

export function batchKindOps(kind: BatchKind): BatchKindOps<Volume> | BatchKindOps<CachedPair> {
  if (kind.kind === 'voco') {
    const o = kind.voco;
    return {
      shapes: (batchSize) => vocoBatchShapes(batchSize, o),
      sample: (volume, rng, out) => void sampleVoco(volume, rng, o, { images: out.images, crops: out.crops, labels: out.labels }),
    } satisfies BatchKindOps<Volume>;
  }
  const o = kind.segmentation;
  return {
    shapes: (batchSize) => {
      const shape = [batchSize * o.numSamples, 1, o.roi, o.roi, o.roi];
      return { image: shape, label: [...shape] };
    },
    sample: (pair, rng, out, source) => {
      const candidates = cropCandidates(pair.image, pair.label, o.roi, o.imageThreshold, source, candidateClasses(o));
      sampleSegmentation(pair.image, pair.label, rng, o, candidates, { image: out.image, label: out.label }, source);
    },
  } satisfies BatchKindOps<CachedPair>;
}
