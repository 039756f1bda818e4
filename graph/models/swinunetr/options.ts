import { UserError } from '../../../common/user-error';
import { OptimizerConfig } from '../../optim/config';
import { PRESET_FEATURE_SIZE, SwinPreset } from '../swinunetr-encoder';

/** MONAI `SwinUNETR(use_v2=True)` as the segmentation graphs build it. */
export interface SwinUnetrOptions {
  readonly featureSize: number;
  /** Image channels (1 for CT, 4 for BraTS-style MRI). */
  readonly inChannels: number;
  /** Classes, background included (14 for BTCV). */
  readonly outChannels: number;
  /** Side of the cubic crops; a multiple of 32 (five halvings). */
  readonly roi: number;
  /** Crops per training step (upstream: 1 volume x 4 crops). */
  readonly batchSize: number;
}

export type SwinUnetrOptionsInput = Partial<SwinUnetrOptions> & { readonly preset?: SwinPreset };

export const DEFAULT_SWINUNETR_OPTIONS: SwinUnetrOptions = {
  featureSize: PRESET_FEATURE_SIZE.B,
  inChannels: 1,
  outChannels: 14,
  roi: 96,
  batchSize: 4,
};

/** Upstream's fine-tuning optimizer (Large-Scale-Medical `Downstream/monai/BTCV`): AdamW, lr 3e-4, decay 1e-5. */
export const SWINUNETR_OPTIMIZER: OptimizerConfig = { kind: 'adamw', weightDecay: 1e-5 };
export const SWINUNETR_LEARNING_RATE = 3e-4;

/** A SwinUNETR option that cannot be built (one line, naming the option). */
export class SwinUnetrOptionError extends UserError {}

/** Fills defaults (the preset's feature size unless one is given) and checks every option. */
export function resolveSwinUnetrOptions(input: SwinUnetrOptionsInput = {}): SwinUnetrOptions {
  const { preset, ...rest } = input;
  if (preset !== undefined && !(preset in PRESET_FEATURE_SIZE)) {
    throw new SwinUnetrOptionError(`--preset ${preset} is not one of ${Object.keys(PRESET_FEATURE_SIZE).join(', ')}`);
  }
  const given = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as Partial<SwinUnetrOptions>;
  const o: SwinUnetrOptions = {
    ...DEFAULT_SWINUNETR_OPTIONS,
    ...(preset ? { featureSize: PRESET_FEATURE_SIZE[preset] } : {}),
    ...given,
  };
  const positiveInt = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new SwinUnetrOptionError(`${name} must be a positive integer, got ${v}`);
  };
  positiveInt('feature size', o.featureSize);
  if (o.featureSize % 12 !== 0) throw new SwinUnetrOptionError(`feature size must be a multiple of 12 (as MONAI's SwinUNETR requires), got ${o.featureSize}`);
  positiveInt('--in-channels', o.inChannels);
  positiveInt('--out-channels', o.outChannels);
  if (o.outChannels < 2) throw new SwinUnetrOptionError(`--out-channels counts the background too and must be at least 2, got ${o.outChannels}`);
  positiveInt('roi', o.roi);
  if (o.roi % 32 !== 0) throw new SwinUnetrOptionError(`roi must be a multiple of 32, got ${o.roi}`);
  positiveInt('batch size', o.batchSize);
  return o;
}
