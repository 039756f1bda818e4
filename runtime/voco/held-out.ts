import { createBatchLoader, LoaderSource } from '../../data/loader/loader';
import { mixSeed } from '../../data/loader/schedule';
import { size } from '../../graph/core/shape';
import { Trainer } from '../session/trainer';
import { TrainConfig } from './config';

const BATCH_INPUTS = new Set(['images', 'crops', 'labels']);
/** Mixed into the run's seed so that the held-out crops are not the ones the first steps train on. */
const HELD_OUT_STREAM = 0x5eed;

/**
 * A fixed set of batches drawn once at the start of a run, whose mean loss under the eval graph (no dropout) is
 * measured every few steps. The training loss moves with each batch's crops; this one moves only with the weights,
 * so it shows whether the run learns.
 */
export class HeldOutLoss {
  private constructor(private readonly batches: readonly Record<string, Float32Array>[]) {}

  static async draw(sources: readonly LoaderSource[], config: TrainConfig, count: number): Promise<HeldOutLoss> {
    const loader = createBatchLoader({
      sources,
      cacheDir: `${config.cacheDir}/volumes`,
      seed: mixSeed(config.seed, HELD_OUT_STREAM),
      batchSize: config.batchSize,
      swBatchSize: config.swBatchSize,
      voco: { roi: config.roi },
      workers: 0,
      onBadFile: 'skip',
      onWarning: () => undefined,
    });
    try {
      const batches: Record<string, Float32Array>[] = [];
      for (let i = 0; i < count; i++) {
        const b = await loader.next();
        batches.push({ images: b.images, crops: b.crops, labels: b.labels });
      }
      return new HeldOutLoss(batches);
    } finally {
      await loader.close();
    }
  }

  async measure(trainer: Trainer): Promise<number> {
    const keepAll = trainer.manifest.models.eval.inputs.filter((io) => io.role === 'input' && !BATCH_INPUTS.has(io.name));
    let sum = 0;
    for (const batch of this.batches) {
      const feeds: Record<string, Float32Array> = { ...batch };
      for (const io of keepAll) feeds[io.name] = new Float32Array(size(io.shape)).fill(1);
      sum += (await trainer.evaluate(feeds)).loss;
    }
    return sum / this.batches.length;
  }
}
