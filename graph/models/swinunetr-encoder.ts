/**
 * The encoder half of MONAI's `SwinUNETR(use_v2=True)`, shared by VoCo pre-training (under `backbone`) and the
 * SwinUNETR segmentation model (at the top level): SwinViT and the five UNETR encoder blocks, with the state-dict
 * order PyTorch gives their keys.
 */
import { Graph, Tensor } from '../core/graph';
import { MaskSource, RelativePositionBuffer, SwinConfig, swinViT } from './swin';
import { unetrBasicBlock } from './unetr-blocks';

export type SwinPreset = 'tiny' | 'B' | 'L' | 'H';

export const PRESET_FEATURE_SIZE: Readonly<Record<SwinPreset, number>> = { tiny: 12, B: 48, L: 96, H: 192 };

/** The scopes of the shared encoder: what `--freeze-encoder` keeps fixed. */
export const ENCODER_SCOPES = ['swinViT', 'encoder1', 'encoder2', 'encoder3', 'encoder4', 'encoder10'] as const;

/** Whether a parameter (under MONAI's names, in the model's own scope) belongs to the shared encoder. */
export function isEncoderParameter(name: string, prefix = ''): boolean {
  return ENCODER_SCOPES.some((scope) => name.startsWith(`${prefix}${scope}.`));
}

export interface SwinUnetrEncoderOutput {
  /** The five SwinViT outputs (normalised), channels first. */
  readonly hidden: readonly Tensor[];
  /** `encoder1` (on the input), `encoder2`, `encoder3`, `encoder4` (on hidden 0..2) and `encoder10` (on hidden 4). */
  readonly encoders: readonly Tensor[];
  readonly buffers: readonly RelativePositionBuffer[];
}

/** SwinViT (scope `swinViT`) and `encoder1..4`, `encoder10` in the current scope, on x [N, Cin, r, r, r]. */
export function swinUnetrEncoder(x: Tensor, config: SwinConfig, masks: MaskSource): SwinUnetrEncoderOutput {
  const g = x.graph;
  const swin = g.scope('swinViT', () => swinViT(x, config, masks));
  const fs = config.featureSize;
  const h = swin.hidden;
  const block = (name: string, input: Tensor, inChannels: number, outChannels: number) =>
    g.scope(name, () => unetrBasicBlock(input, { inChannels, outChannels }));
  const encoders = [
    block('encoder1', x, config.inChannels, fs),
    block('encoder2', h[0], fs, fs),
    block('encoder3', h[1], 2 * fs, 2 * fs),
    block('encoder4', h[2], 4 * fs, 4 * fs),
    block('encoder10', h[4], 16 * fs, 16 * fs),
  ];
  return { hidden: h, encoders, buffers: swin.buffers };
}

export interface StateDictEntry {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: 'float32' | 'int64';
  readonly kind: 'parameter' | 'state' | 'buffer';
}

/**
 * Every key of the PyTorch state dict of a model holding this encoder, in PyTorch's order: parameters and state of
 * the graph plus the `relative_position_index` buffers. The order differs from creation order only in SwinViT,
 * where upstream registers `layers1..4` before the v2 conv blocks `layers1c..4c`, and PatchMerging's `reduction`
 * before its `norm`.
 */
export function stateDictEntries(model: { readonly graph: Graph; readonly buffers: readonly RelativePositionBuffer[] }): StateDictEntry[] {
  const entries: StateDictEntry[] = model.graph.parameters.map((p) => ({
    name: p.tensor.name,
    shape: p.tensor.shape,
    dtype: 'float32',
    kind: p.trainable ? 'parameter' : 'state',
  }));
  for (const b of model.buffers) {
    const table = `${b.name.slice(0, -'relative_position_index'.length)}relative_position_bias_table`;
    const at = entries.findIndex((e) => e.name === table);
    entries.splice(at + 1, 0, { name: b.name, shape: b.shape, dtype: 'int64', kind: 'buffer' });
  }
  for (const r of entries.filter((e) => e.name.endsWith('.downsample.reduction.weight'))) {
    entries.splice(entries.indexOf(r), 1);
    entries.splice(entries.findIndex((e) => e.name === r.name.replace('reduction.weight', 'norm.weight')), 0, r);
  }
  const inSwin = (e: StateDictEntry): boolean => /(^|\.)swinViT\./.test(e.name);
  const start = entries.findIndex(inSwin);
  if (start < 0) return entries;
  const after = entries.slice(start).findIndex((e) => !inSwin(e));
  const stop = after < 0 ? entries.length : start + after;
  const swin = entries.slice(start, stop);
  const convBlock = (e: StateDictEntry): boolean => /(^|\.)swinViT\.layers\dc\./.test(e.name);
  return [...entries.slice(0, start), ...swin.filter((e) => !convBlock(e)), ...swin.filter(convBlock), ...entries.slice(stop)];
}
