import { UserError } from '../../common/user-error';

export class VocoSamplingOptionError extends UserError {}

/**
 * VoCo sampling parameters. The region is `grid * roi` voxels along x and y and `roi` along z; it is tiled by a
 * `grid` x `grid` set of base crops, and `swBatchSize` random crops of `roi`^3 are drawn inside it.
 */
export interface VocoSamplingOptions {
  readonly roi: number;
  readonly grid: number;
  readonly swBatchSize: number;
  /** Apply upstream's random flips, rot90 and intensity shift to every crop (random and base). */
  readonly augment: boolean;
  /** Probability of a flip, per axis. */
  readonly flipProb: number;
  /** Probability of a rotation by 90, 180 or 270 degrees in the x-y plane. */
  readonly rotateProb: number;
  /** Probability of adding one offset, uniform in [-shiftOffset, shiftOffset), to the whole crop. */
  readonly shiftProb: number;
  readonly shiftOffset: number;
}

/** Upstream's values (Large-Scale-Medical, Self-supervised): 64^3 crops, a 192 x 192 x 64 region, sw_batch_size 2. */
export const DEFAULT_VOCO: VocoSamplingOptions = {
  roi: 64,
  grid: 3,
  swBatchSize: 2,
  augment: true,
  flipProb: 0.2,
  rotateProb: 0.2,
  shiftProb: 0.5,
  shiftOffset: 0.1,
};

export function vocoOptions(partial: Partial<VocoSamplingOptions> = {}): VocoSamplingOptions {
  const o = { ...DEFAULT_VOCO, ...partial };
  const whole = (name: string, v: number, min: number): void => {
    if (!Number.isInteger(v) || v < min) throw new VocoSamplingOptionError(`VoCo option ${name} must be a whole number >= ${min}, got ${v}`);
  };
  whole('roi', o.roi, 2);
  whole('grid', o.grid, 2);
  whole('swBatchSize', o.swBatchSize, 1);
  for (const [name, p] of [['flipProb', o.flipProb], ['rotateProb', o.rotateProb], ['shiftProb', o.shiftProb]] as const) {
    if (!(p >= 0 && p <= 1)) throw new VocoSamplingOptionError(`VoCo option ${name} must be a probability in [0, 1], got ${p}`);
  }
  if (!(o.shiftOffset >= 0 && Number.isFinite(o.shiftOffset))) throw new VocoSamplingOptionError(`VoCo option shiftOffset must be >= 0, got ${o.shiftOffset}`);
  return o;
}

/** Shape of the sampled region: [grid * roi, grid * roi, roi]. */
export function regionShape(o: VocoSamplingOptions): [number, number, number] {
  return [o.grid * o.roi, o.grid * o.roi, o.roi];
}
