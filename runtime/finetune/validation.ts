/**
 * Validation of a fine-tuning run as upstream's BTCV script does it: every validation case preprocessed (the
 * training chain without random crops), sliding-window inference with the segmenter, argmax, and MONAI's
 * DiceMetric(include_background=False) per class, all in the preprocessed space.
 */
import { UserError } from '../../common/user-error';
import type { CachedPair } from '../../data/cache/format';
import { loadOrBuildPair } from '../../data/cache/pair-task';
import { VolumeCache } from '../../data/cache/store';
import type { PairLoaderSource } from '../../data/loader/loader';
import { diceScores, reduceMean, reduceMeanBatch } from '../../data/metrics/dice';
import { LOGITS_OUTPUT, SEGMENTER_MODEL } from '../../graph/models/swinunetr/artifacts';
import { IMAGE_INPUT } from '../../graph/models/swinunetr/model';
import type { Log, Metric } from '../loop/task';
import { batchedPredictor } from '../segment/session-predictor';
import { argmaxChannels, slidingWindowInference } from '../segment/sliding-window';
import type { Trainer } from '../session/trainer';

/** Every validation file was bad: there is nothing to validate on. */
export class NoValidationCaseError extends UserError {}

export const MEAN_DICE_KEY = 'val_dice_mean';

/** `val_dice_mean` and `val_dice.<class>` per foreground class (spaces in names become underscores). */
export function diceMetrics(classNames: readonly string[]): Metric[] {
  const key = (name: string) => name.trim().replace(/\s+/g, '_');
  return [
    { key: MEAN_DICE_KEY, tag: 'dice/val_mean' },
    ...classNames.slice(1).map((name) => ({ key: `val_dice.${key(name)}`, tag: `dice/${key(name)}` })),
  ];
}

export interface ValidationSettings {
  readonly roi: number;
  readonly overlap: number;
  /** Windows per segmenter run. */
  readonly swBatchSize: number;
  readonly inChannels: number;
  readonly numClasses: number;
}

export class ValidationDice {
  private constructor(
    private readonly cases: readonly CachedPair[],
    private readonly settings: ValidationSettings,
  ) {}

  /** The preprocessed cases (through the cache); a bad one is skipped with a warning, all bad is an error. */
  static async open(sources: readonly PairLoaderSource[], cacheDir: string, settings: ValidationSettings, warn: Log): Promise<ValidationDice> {
    const cache = new VolumeCache({ dir: cacheDir });
    const cases: CachedPair[] = [];
    for (const source of sources) {
      const outcome = await loadOrBuildPair(cache, source);
      if (outcome.status === 'bad') warn(`skipping bad validation file ${source.path}: ${outcome.reason}`);
      else cases.push(outcome.volume);
    }
    if (cases.length === 0) throw new NoValidationCaseError(`none of the ${sources.length} validation case(s) is usable`);
    return new ValidationDice(cases, settings);
  }

  get caseCount(): number {
    return this.cases.length;
  }

  /** Mean Dice over the cases (MONAI's `mean` reduction), then each foreground class's (`mean_batch`). */
  async measure(trainer: Trainer): Promise<number[]> {
    const { roi, overlap, swBatchSize, inChannels, numClasses } = this.settings;
    // Artifacts written before the segmenter's batch axis was symbolic have it fixed at the sw batch size.
    const image = trainer.manifest.models.forward[SEGMENTER_MODEL].inputs.find((io) => io.name === IMAGE_INPUT)!;
    const fixedBatch = image.batchDim === undefined ? image.shape[0] : undefined;
    const predict = batchedPredictor(fixedBatch, inChannels * roi ** 3, async (windows) => {
      return (await trainer.forward(SEGMENTER_MODEL, { [IMAGE_INPUT]: windows }))[LOGITS_OUTPUT].data as Float32Array;
    });
    const rows: number[][] = [];
    for (const c of this.cases) {
      const input = { data: c.image.data, channels: inChannels, shape: c.image.shape };
      const logits = await slidingWindowInference(input, predict, { roi, overlap, swBatchSize });
      rows.push(diceScores(argmaxChannels(logits), c.label.data, { numClasses }));
    }
    return [reduceMean(rows).value, ...reduceMeanBatch(rows).value];
  }
}
