import { Tensor } from '../core/graph';
import { Shape } from '../core/shape';
import { add } from '../ops/elementwise';
import { attention } from '../ops/attention';
import { equal, where } from '../ops/compare';
import { gather } from '../ops/gather';
import { reshape } from '../ops/shape';
import { concat, pad, slice, split } from '../ops/slice';
import { rollBack } from './roll';
import { transpose } from '../ops/transpose';
import { conv3d } from '../nn/conv';
import { dropPath } from '../nn/dropout';
import { gelu } from '../nn/activation';
import { layerNorm } from '../nn/norm';
import { linear } from '../nn/linear';
import { unetrBasicBlock } from './unetr-blocks';
import {
  Triple,
  WindowGeometry,
  isShifted,
  maskClassCuts,
  maskClasses,
  relativePositionIndex,
  topLeftBlock,
  windowGeometry,
} from './swin-windows';

/** MONAI `SwinTransformer(use_v2=True)` as VoCo configures it (patch 2, window 7, depths 2-2-2-2, heads 3-6-12-24). */
export interface SwinConfig {
  readonly featureSize: number;
  readonly inChannels: number;
  readonly window: number;
  readonly patch: number;
  readonly depths: readonly number[];
  readonly heads: readonly number[];
  readonly mlpRatio: number;
  readonly dropPathRate: number;
}

export const VOCO_SWIN: Omit<SwinConfig, 'featureSize' | 'dropPathRate'> = {
  inChannels: 1,
  window: 7,
  patch: 2,
  depths: [2, 2, 2, 2],
  heads: [3, 6, 12, 24],
  mlpRatio: 4,
};

/** Supplies a random keep-mask input (1 = keep) drawn by the runtime, for dropout-like ops with keep rate 1 - p. */
export type MaskSource = (name: string, shape: Shape, p: number) => Tensor;

/** One relative-position index per window side, shared by every block that uses it. */
export interface RelativePositionBuffer {
  readonly name: string;
  readonly window: number;
  readonly shape: readonly [number, number];
}

export interface SwinOutput {
  /** The five stage outputs, channels first, layer-normalised over channels (MONAI's `proj_out`). */
  readonly hidden: readonly Tensor[];
  /** The `relative_position_index` buffers of every block, in creation order. */
  readonly buffers: readonly RelativePositionBuffer[];
}

const LN_EPS = 1e-5;
const MASKED = -100;

/** Builds the backbone in the current scope (upstream: `backbone.swinViT`) on x [N, Cin, D, H, W]. */
export function swinViT(x: Tensor, config: SwinConfig, masks: MaskSource): SwinOutput {
  const g = x.graph;
  const buffers: RelativePositionBuffer[] = [];
  const totalBlocks = config.depths.reduce((a, b) => a + b, 0);
  const dropRates = Array.from({ length: totalBlocks }, (_, i) => (totalBlocks === 1 ? 0 : (config.dropPathRate * i) / (totalBlocks - 1)));

  let h = g.scope('patch_embed', () =>
    g.scope('proj', () =>
      conv3d(x, { inChannels: config.inChannels, outChannels: config.featureSize, kernelSize: config.patch, stride: config.patch, padding: 0, bias: true }),
    ),
  );
  const hidden = [normaliseChannels(h)];
  let blockIndex = 0;
  config.depths.forEach((depth, stage) => {
    const dim = config.featureSize * 2 ** stage;
    const layer = `layers${stage + 1}`;
    h = g.scope(`${layer}c`, () => g.scope(0, () => unetrBasicBlock(h, { inChannels: dim, outChannels: dim })));
    const rates = dropRates.slice(blockIndex, blockIndex + depth);
    blockIndex += depth;
    h = g.scope(layer, () =>
      g.scope(0, () => basicLayer(h, { dim, depth, heads: config.heads[stage], rates, layer, config, masks, buffers })),
    );
    hidden.push(normaliseChannels(h));
  });
  return { hidden, buffers };
}

/** x [N, C, ...] layer-normalised over C without weights. */
function normaliseChannels(x: Tensor): Tensor {
  const last = toChannelsLast(x);
  return toChannelsFirst(layerNorm(last, { normalizedShape: [x.shape[1]], eps: LN_EPS, elementwiseAffine: false }));
}

const toChannelsLast = (x: Tensor): Tensor => transpose(x, [0, 2, 3, 4, 1]);
const toChannelsFirst = (x: Tensor): Tensor => transpose(x, [0, 4, 1, 2, 3]);

interface LayerSpec {
  readonly dim: number;
  readonly depth: number;
  readonly heads: number;
  readonly rates: readonly number[];
  readonly layer: string;
  readonly config: SwinConfig;
  readonly masks: MaskSource;
  readonly buffers: RelativePositionBuffer[];
}

/** MONAI's BasicLayer: `depth` blocks alternating plain and shifted windows, then legacy patch merging. */
function basicLayer(x: Tensor, spec: LayerSpec): Tensor {
  const g = x.graph;
  const [, , d, hgt, w] = x.shape;
  const resolution: Triple = [d, hgt, w];
  const shifted = windowGeometry(resolution, spec.config.window, Math.floor(spec.config.window / 2));
  const plain = windowGeometry(resolution, spec.config.window, 0);
  let h = toChannelsLast(x);
  g.scope('blocks', () => {
    for (let i = 0; i < spec.depth; i++) {
      const geometry = i % 2 === 0 ? plain : shifted;
      h = g.scope(i, () => swinBlock(h, { ...spec, geometry, dropRate: spec.rates[i], name: `${spec.layer}.0.blocks.${i}` }));
    }
  });
  h = g.scope('downsample', () => patchMerging(h));
  return toChannelsFirst(h);
}

interface BlockSpec extends LayerSpec {
  readonly geometry: WindowGeometry;
  readonly dropRate: number;
  readonly name: string;
}

/** SwinTransformerBlock on channels-last x [N, D, H, W, C]. */
function swinBlock(x: Tensor, spec: BlockSpec): Tensor {
  const g = x.graph;
  const { dim } = spec;
  const residual = (branch: Tensor, part: string): Tensor =>
    spec.dropRate > 0 ? dropPath(branch, spec.masks(`drop_path.${spec.name}.${part}`, [x.shape[0], 1, 1, 1, 1], spec.dropRate), spec.dropRate) : branch;

  const normed = g.scope('norm1', () => layerNorm(x, { normalizedShape: [dim], eps: LN_EPS, elementwiseAffine: true }));
  const windows = partitionWindows(normed, spec.geometry);
  const attended = g.scope('attn', () => windowAttention(windows, x.shape[0], spec));
  const h = add(x, residual(reverseWindows(attended, x.shape, spec.geometry), 'attn'));

  const mlpIn = g.scope('norm2', () => layerNorm(h, { normalizedShape: [dim], eps: LN_EPS, elementwiseAffine: true }));
  const mlpOut = g.scope('mlp', () => {
    const hiddenDim = Math.round(dim * spec.config.mlpRatio);
    const a = g.scope('linear1', () => linear(mlpIn, { inFeatures: dim, outFeatures: hiddenDim, bias: true }));
    return g.scope('linear2', () => linear(gelu(a), { inFeatures: hiddenDim, outFeatures: dim, bias: true }));
  });
  return add(h, residual(mlpOut, 'mlp'));
}

/** Channels-last x [N, D, H, W, C] -> windows [N * windows, tokens, C]: pad, shift, partition. */
function partitionWindows(x: Tensor, geo: WindowGeometry): Tensor {
  const [n, d, h, w, c] = x.shape;
  const extra = [geo.padded[0] - d, geo.padded[1] - h, geo.padded[2] - w];
  let t = extra.some((e) => e > 0) ? pad(x, [0, 0, 0, 0, 0, 0, ...extra, 0], { mode: 'constant', value: 0 }) : x;
  for (let axis = 0; axis < 3; axis++) t = rollBack(t, geo.shift[axis], axis + 1);
  const [cd, ch, cw] = geo.counts;
  const [wd, wh, ww] = geo.window;
  t = reshape(t, [n, cd, wd, ch, wh, cw, ww, c]);
  t = transpose(t, [0, 1, 3, 5, 2, 4, 6, 7]);
  return reshape(t, [n * geo.windows, geo.tokens, c]);
}

/** Inverse of partitionWindows: windows back to [N, D, H, W, C], shift undone, padding cropped. */
function reverseWindows(windows: Tensor, shape: Shape, geo: WindowGeometry): Tensor {
  const [n, d, h, w, c] = shape;
  const [cd, ch, cw] = geo.counts;
  const [wd, wh, ww] = geo.window;
  let t = reshape(windows, [n, cd, ch, cw, wd, wh, ww, c]);
  t = transpose(t, [0, 1, 4, 2, 5, 3, 6, 7]);
  t = reshape(t, [n, ...geo.padded, c]);
  for (let axis = 0; axis < 3; axis++) t = rollBack(t, -geo.shift[axis], axis + 1);
  const cropped = geo.padded[0] !== d || geo.padded[1] !== h || geo.padded[2] !== w;
  return cropped ? slice(t, { starts: [0, 0, 0], ends: [d, h, w], axes: [1, 2, 3] }) : t;
}

/**
 * MONAI's WindowAttention over all windows of all samples at once: windows [N * nW, n, C] -> same shape, with ONNX
 * Attention nodes (graph/ops/attention.ts): the [.., n, n] scores never leave them, and their gradient recomputes
 * them a chunk at a time. The relative-position bias [heads, n, n] is the additive mask. Shifted windows differ
 * in their mask, but only in up to eight classes (graph/models/swin-windows.ts): each class of windows is one
 * Attention node whose mask is that class's mask plus the bias, broadcast over its windows, so that no
 * [nW, heads, n, n] mask is built, read per chunk or reduced back to the bias in the gradient.
 */
function windowAttention(windows: Tensor, samples: number, spec: BlockSpec): Tensor {
  const g = windows.graph;
  const { dim, heads, geometry } = spec;
  const n = windows.shape[1];
  const headDim = dim / heads;
  const full = spec.config.window;
  const span = 2 * full - 1;
  const table = g.parameter('relative_position_bias_table', 'float32', [span ** 3, heads], {
    kind: 'truncated-normal',
    std: 0.02,
    a: -2,
    b: 2,
  });
  spec.buffers.push({ name: g.scopedName('relative_position_index'), window: full, shape: [full ** 3, full ** 3] });
  const index = g.constant(topLeftBlock(relativePositionIndex(full), full ** 3, n), 'int64', [n * n], 'relative_position_index_used');
  // Gathered from the transposed table, each head's bias is one contiguous row: the gradient's ScatterElements then
  // sums along rows, several times faster in ONNX Runtime than across [n * n, heads] (12 heads: 11 ms against 2).
  const bias = reshape(gather(transpose(table, [1, 0]), index, 1), [heads, n, n]);

  const qkv = g.scope('qkv', () => linear(windows, { inFeatures: dim, outFeatures: 3 * dim, bias: true }));
  // MONAI scales q by head_dim ** -0.5 before q k^T; for the power-of-two head sizes of VoCo's models (4, 16)
  // scaling the product instead is the same in float32.
  const attend = (rows: Tensor, mask: Tensor): Tensor => {
    const count = rows.shape[0];
    const [q, k, v] = split(rows, [dim, dim, dim], 2).map((t) => transpose(reshape(t, [count, n, heads, headDim]), [0, 2, 1, 3]));
    return reshape(transpose(attention(q, k, v, mask, headDim ** -0.5), [0, 2, 1, 3]), [count, n, dim]);
  };
  const merged = isShifted(geometry) ? attendByMaskClass(qkv, samples, geometry, bias, attend) : attend(qkv, bias);
  return g.scope('proj', () => linear(merged, { inFeatures: dim, outFeatures: dim, bias: true }));
}

/**
 * Shifted-window attention class by class: qkv [N * nW, n, 3C] as [N, cd, ch, cw, ...], each class's box of
 * windows split out, attended with its mask and put back in place.
 */
function attendByMaskClass(
  qkv: Tensor,
  samples: number,
  geo: WindowGeometry,
  bias: Tensor,
  attend: (rows: Tensor, mask: Tensor) => Tensor,
): Tensor {
  const [bw, n, width] = qkv.shape;
  const classes = maskClasses(geo);
  // The classes' boxes split each shifted axis in two (all windows but the last, the last); they come in (d, h, w)
  // order, so nested Splits along d, h, w yield them in order and nested Concats put them back.
  const cuts = maskClassCuts(geo);
  const splitAlong = (parts: Tensor[], axis: number): Tensor[] => parts.flatMap((t) => (cuts[axis - 1].length > 1 ? split(t, cuts[axis - 1], axis) : [t]));
  const boxes = splitAlong(splitAlong(splitAlong([reshape(qkv, [samples, ...geo.counts, n * width])], 1), 2), 3);
  const outputs = boxes.map((box, i) => {
    const count = box.shape[1] * box.shape[2] * box.shape[3];
    const mask = classes[i].open ? bias : add(regionMask(qkv, classes[i].ids), bias);
    const out = attend(reshape(box, [samples * count, n, width]), mask);
    return reshape(out, [...box.shape.slice(0, 4), out.shape[1] * out.shape[2]]);
  });
  const joinAlong = (parts: Tensor[], axis: number): Tensor[] => {
    const group = cuts[axis - 1].length;
    return Array.from({ length: parts.length / group }, (_, i) => (group > 1 ? concat(parts.slice(i * group, (i + 1) * group), axis) : parts[i]));
  };
  const [joined] = joinAlong(joinAlong(joinAlong(outputs, 3), 2), 1);
  return reshape(joined, [bw, n, joined.shape[4] / n]);
}

/** [1, n, n]: 0 where two tokens of a window come from the same region of the shifted grid, else -100. */
function regionMask(like: Tensor, ids: Float32Array): Tensor {
  const g = like.graph;
  const tokens = ids.length;
  const region = g.constant(ids, 'float32', [tokens], 'shift_region_ids');
  const same = equal(reshape(region, [1, tokens, 1]), reshape(region, [1, 1, tokens]));
  return where(same, g.scalar(0, 'float32'), g.scalar(MASKED, 'float32'));
}

/**
 * MONAI's legacy PatchMerging on channels-last x [N, D, H, W, C] -> [N, D/2, H/2, W/2, 2C]. The eight strided
 * slices are taken in upstream's order, in which (0,1,0) and (0,0,1) appear twice and (1,1,0), (0,1,1) never.
 */
const MERGE_OFFSETS: readonly Triple[] = [
  [0, 0, 0],
  [1, 0, 0],
  [0, 1, 0],
  [0, 0, 1],
  [1, 0, 1],
  [0, 1, 0],
  [0, 0, 1],
  [1, 1, 1],
];

function patchMerging(x: Tensor): Tensor {
  const g = x.graph;
  const [, d, h, w, c] = x.shape;
  const odd = [d % 2, h % 2, w % 2];
  const t = odd.some((o) => o > 0) ? pad(x, [0, 0, 0, 0, 0, 0, ...odd, 0], { mode: 'constant', value: 0 }) : x;
  const [pd, ph, pw] = [d + odd[0], h + odd[1], w + odd[2]];
  const parts = MERGE_OFFSETS.map((o) => slice(t, { starts: [...o], ends: [pd, ph, pw], axes: [1, 2, 3], steps: [2, 2, 2] }));
  const merged = concat(parts, 4);
  const normed = g.scope('norm', () => layerNorm(merged, { normalizedShape: [8 * c], eps: LN_EPS, elementwiseAffine: true }));
  return g.scope('reduction', () => linear(normed, { inFeatures: 8 * c, outFeatures: 2 * c, bias: false }));
}
