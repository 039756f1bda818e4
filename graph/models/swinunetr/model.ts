import { Graph, Tensor } from '../../core/graph';
import { MaskSource, RelativePositionBuffer, SwinConfig, VOCO_SWIN } from '../swin';
import { swinUnetrEncoder } from '../swinunetr-encoder';
import { unetOutBlock, unetrUpBlock } from './decoder';
import { diceCeLoss } from './loss';
import { SwinUnetrOptions } from './options';

export interface SwinUnetrNet {
  /** [N, outChannels, r, r, r]. */
  readonly logits: Tensor;
  /** The five SwinViT outputs (the skips of decoder5 and the encoders). */
  readonly hidden: readonly Tensor[];
  /** The outputs of decoder5, decoder4, decoder3, decoder2 and decoder1. */
  readonly decoders: readonly Tensor[];
  readonly buffers: readonly RelativePositionBuffer[];
}

/** Fine-tuning runs without drop path (upstream's dropout_path_rate 0), so no block asks for a keep mask. */
const noMasks: MaskSource = (name) => {
  throw new Error(`SwinUNETR is built without drop path, yet ${name} asked for a keep mask`);
};

/**
 * MONAI's `SwinUNETR(use_v2=True).forward` in the current scope on x [N, Cin, r, r, r]: the shared encoder
 * (`swinViT`, `encoder1..4`, `encoder10`), the decoders `decoder5..1` on the skips, and the 1x1x1 `out` conv.
 */
export function swinUnetr(x: Tensor, o: Pick<SwinUnetrOptions, 'featureSize' | 'inChannels' | 'outChannels'>): SwinUnetrNet {
  const g = x.graph;
  const config: SwinConfig = { ...VOCO_SWIN, featureSize: o.featureSize, inChannels: o.inChannels, dropPathRate: 0 };
  const { hidden, encoders, buffers } = swinUnetrEncoder(x, config, noMasks);
  const [enc0, enc1, enc2, enc3, dec4] = encoders;
  const fs = o.featureSize;
  const up = (name: string, input: Tensor, skip: Tensor, inChannels: number, outChannels: number) =>
    g.scope(name, () => unetrUpBlock(input, skip, { inChannels, outChannels }));
  const dec3 = up('decoder5', dec4, hidden[3], 16 * fs, 8 * fs);
  const dec2 = up('decoder4', dec3, enc3, 8 * fs, 4 * fs);
  const dec1 = up('decoder3', dec2, enc2, 4 * fs, 2 * fs);
  const dec0 = up('decoder2', dec1, enc1, 2 * fs, fs);
  const out = up('decoder1', dec0, enc0, fs, fs);
  const logits = g.scope('out', () => unetOutBlock(out, { inChannels: fs, outChannels: o.outChannels }));
  return { logits, hidden, decoders: [dec3, dec2, dec1, dec0, out], buffers };
}

export const IMAGE_INPUT = 'image';
export const LABEL_INPUT = 'label';

export interface SegmenterGraph {
  readonly graph: Graph;
  /** `image` [batch, inChannels, r, r, r]. */
  readonly image: Tensor;
  /** [batch, outChannels, r, r, r]. */
  readonly logits: Tensor;
  readonly buffers: readonly RelativePositionBuffer[];
}

/** The forward model for inference: image in, logits out; `batch` rows (the sliding window's sw batch). */
export function buildSegmenterGraph(options: SwinUnetrOptions, batch = options.batchSize): SegmenterGraph {
  const g = new Graph();
  const image = g.input(IMAGE_INPUT, 'float32', [batch, options.inChannels, options.roi, options.roi, options.roi]);
  const net = swinUnetr(image, options);
  return { graph: g, image, logits: net.logits, buffers: net.buffers };
}

export interface SwinUnetrTrainingGraph extends SegmenterGraph {
  /** `label` [batch, 1, r, r, r]: the classes as floats. */
  readonly label: Tensor;
  /** `loss`, `loss.dice`, `loss.ce` (scalars), `loss.dice.per_item_class` [batch, C - 1] and `logits`. */
  readonly outputs: Readonly<Record<string, Tensor>>;
}

/** The model and its DiceCE loss on a batch of `options.batchSize` crops with their labels. */
export function buildSwinUnetrTrainingGraph(options: SwinUnetrOptions): SwinUnetrTrainingGraph {
  const seg = buildSegmenterGraph(options);
  const r = options.roi;
  const label = seg.graph.input(LABEL_INPUT, 'float32', [options.batchSize, 1, r, r, r]);
  const loss = diceCeLoss(seg.logits, label);
  return {
    ...seg,
    label,
    outputs: {
      loss: loss.total,
      'loss.dice': loss.dice,
      'loss.ce': loss.ce,
      'loss.dice.per_item_class': loss.dicePerItemClass,
      logits: seg.logits,
    },
  };
}
