import { UserError } from '../../../common/user-error';

import { PRESET_FEATURE_SIZE, SwinPreset } from '../swinunetr-encoder';

export type VocoPreset = SwinPreset;
export { PRESET_FEATURE_SIZE };

export interface VocoModelOptions {
  readonly featureSize: number;
  /** Side of the cubic crops; a multiple of 32 (five halvings). */
  readonly roi: number;
  /** Volumes per step. */
  readonly batchSize: number;
  /** Random crops per volume. */
  readonly swBatchSize: number;
  /** Base crops per volume (3x3 in VoCo). */
  readonly baseCrops: number;
  readonly dropPathRate: number;
  /** Probability of dropping a whole embedding row before the student head; 0 turns it off. */
  readonly featureDropout: number;
  readonly emaMomentum: number;
}

export type VocoModelOptionsInput = Partial<VocoModelOptions> & { readonly preset?: VocoPreset };

export const DEFAULT_VOCO_OPTIONS: VocoModelOptions = {
  featureSize: PRESET_FEATURE_SIZE.B,
  roi: 64,
  batchSize: 1,
  swBatchSize: 1,
  baseCrops: 9,
  dropPathRate: 0,
  featureDropout: 0.2,
  emaMomentum: 0.9,
};

/** A model option that cannot be built (one line, naming the option). */
export class VocoModelOptionError extends UserError {}

/** Fills defaults (the preset's feature size unless one is given) and checks every option. */
export function resolveVocoOptions(input: VocoModelOptionsInput = {}): VocoModelOptions {
  if (input.preset !== undefined && !(input.preset in PRESET_FEATURE_SIZE)) {
    throw new VocoModelOptionError(`--preset ${input.preset} is not one of ${Object.keys(PRESET_FEATURE_SIZE).join(', ')}`);
  }
  const featureSize = input.featureSize ?? (input.preset ? PRESET_FEATURE_SIZE[input.preset] : DEFAULT_VOCO_OPTIONS.featureSize);
  const o: VocoModelOptions = { ...DEFAULT_VOCO_OPTIONS, ...definedOnly(input), featureSize };
  const positiveInt = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new VocoModelOptionError(`${name} must be a positive integer, got ${v}`);
  };
  positiveInt('feature size', o.featureSize);
  if (o.featureSize % 12 !== 0) throw new VocoModelOptionError(`feature size must be a multiple of 12 (as MONAI's SwinUNETR requires), got ${o.featureSize}`);
  positiveInt('roi', o.roi);
  if (o.roi % 32 !== 0) throw new VocoModelOptionError(`roi must be a multiple of 32, got ${o.roi}`);
  positiveInt('batch size', o.batchSize);
  positiveInt('sw batch size', o.swBatchSize);
  positiveInt('base crops', o.baseCrops);
  if (o.baseCrops < 2) throw new VocoModelOptionError(`base crops must be at least 2 (the regularisation loss pairs them), got ${o.baseCrops}`);
  if (!(o.dropPathRate >= 0 && o.dropPathRate < 1)) throw new VocoModelOptionError(`drop-path rate must be in [0, 1), got ${o.dropPathRate}`);
  if (!(o.featureDropout >= 0 && o.featureDropout < 1)) throw new VocoModelOptionError(`feature dropout must be in [0, 1), got ${o.featureDropout}`);
  if (!(o.emaMomentum >= 0 && o.emaMomentum <= 1)) throw new VocoModelOptionError(`EMA momentum must be in [0, 1], got ${o.emaMomentum}`);
  return o;
}

function definedOnly(input: VocoModelOptionsInput): Partial<VocoModelOptions> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) if (v !== undefined && k !== 'preset') out[k] = v;
  return out as Partial<VocoModelOptions>;
}

/** Rows of one VoCo step: every volume's random crops and base crops. */
export const stepRows = (o: Pick<VocoModelOptions, 'batchSize' | 'swBatchSize' | 'baseCrops'>): number => o.batchSize * (o.swBatchSize + o.baseCrops);
