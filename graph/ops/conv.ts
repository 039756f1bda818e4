import { Attribute, Node, Tensor, typedArrayOf } from '../core/graph';
import { Shape, ShapeError, formatShape, largestDivisor, size } from '../core/shape';
import { GradientTable } from '../autodiff/rule';
import { matmul, transposeLast2 } from './matmul';
import { reduceSum, sumLeading } from './reduce';
import { reshape } from './shape';
import { int64s } from './int64';
import { scan } from './scan';
import { concat, pad, slice, sliceAt } from './slice';
import { transpose } from './transpose';

export interface ConvOptions {
  /** One per spatial axis; 1 when omitted. */
  readonly strides?: readonly number[];
  /** ONNX layout: all begins, then all ends; 0 when omitted. */
  readonly pads?: readonly number[];
  readonly dilations?: readonly number[];
  readonly groups?: number;
}

export interface ConvTransposeOptions extends ConvOptions {
  /** Extra size added at the end of each spatial axis; each must be smaller than its stride. */
  readonly outputPadding?: readonly number[];
}

/** Resolved geometry of a convolution over `rank` spatial axes. */
interface Geometry {
  readonly kernel: readonly number[];
  readonly strides: readonly number[];
  readonly begins: readonly number[];
  readonly ends: readonly number[];
  readonly dilations: readonly number[];
  readonly groups: number;
}

const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => i + from);

function resolve(op: string, kernel: readonly number[], options: ConvOptions): Geometry {
  const rank = kernel.length;
  const ones = kernel.map(() => 1);
  const strides = options.strides ?? ones;
  const dilations = options.dilations ?? ones;
  const pads = options.pads ?? [...ones, ...ones].map(() => 0);
  const groups = options.groups ?? 1;
  const positive = (xs: readonly number[]) => xs.every((v) => Number.isInteger(v) && v >= 1);
  if (strides.length !== rank || dilations.length !== rank || pads.length !== 2 * rank) {
    throw new ShapeError(`${op}: a ${rank}-D kernel needs ${rank} strides and dilations and ${2 * rank} pads`);
  }
  if (!positive(strides) || !positive(dilations) || !positive([groups]) || !pads.every((p) => Number.isInteger(p) && p >= 0)) {
    throw new ShapeError(`${op}: strides, dilations and groups must be positive integers and pads non-negative`);
  }
  return { kernel, strides, begins: pads.slice(0, rank), ends: pads.slice(rank), dilations, groups };
}

/** Extent of the dilated kernel minus one along axis `i`. */
const reach = (g: Geometry, i: number): number => g.dilations[i] * (g.kernel[i] - 1);

function convAttributes(g: Geometry, outputPadding?: readonly number[]): Record<string, Attribute> {
  const attributes: Record<string, Attribute> = {
    kernel_shape: { type: 'ints', value: g.kernel },
    strides: { type: 'ints', value: g.strides },
    pads: { type: 'ints', value: [...g.begins, ...g.ends] },
    dilations: { type: 'ints', value: g.dilations },
    group: { type: 'int', value: g.groups },
  };
  if (outputPadding) attributes.output_padding = { type: 'ints', value: outputPadding };
  return attributes;
}

function geometryOf(node: Node): Geometry {
  const ints = (name: string) => node.attributes[name].value as number[];
  const pads = ints('pads');
  const rank = pads.length / 2;
  return {
    kernel: ints('kernel_shape'),
    strides: ints('strides'),
    begins: pads.slice(0, rank),
    ends: pads.slice(rank),
    dilations: ints('dilations'),
    groups: node.attributes.group.value as number,
  };
}

function checkOperands(op: string, x: Tensor, w: Tensor, b: Tensor | null | undefined, biasChannels: (w: Shape) => number): void {
  const shapes = () => [x, w, ...(b ? [b] : [])].map((t) => formatShape(t.shape)).join(', ');
  if (x.rank < 3 || w.rank !== x.rank) throw new ShapeError(`${op}: input and weight must both be [N, C, ...spatial], got ${shapes()}`);
  if (w.dtype !== x.dtype || (b && b.dtype !== x.dtype)) throw new ShapeError(`${op}: operands must share one dtype`);
  if (b && (b.rank !== 1 || b.shape[0] !== biasChannels(w.shape))) throw new ShapeError(`${op}: bias does not fit the weight in ${shapes()}`);
}

/**
 * N-D convolution (ONNX Conv): x [N, Cin, ...spatial], w [Cout, Cin / groups, ...kernel], optional b [Cout].
 */
export function conv(x: Tensor, w: Tensor, b?: Tensor | null, options: ConvOptions = {}): Tensor {
  checkOperands('Conv', x, w, b, (ws) => ws[0]);
  const g = resolve('Conv', w.shape.slice(2), options);
  const [n, cin, ...spatial] = x.shape;
  const cout = w.shape[0];
  if (cin !== w.shape[1] * g.groups || cout % g.groups !== 0) {
    throw new ShapeError(`Conv: input ${formatShape(x.shape)} and weight ${formatShape(w.shape)} do not fit with ${g.groups} group(s)`);
  }
  const out = spatial.map((d, i) => Math.floor((d + g.begins[i] + g.ends[i] - reach(g, i) - 1) / g.strides[i]) + 1);
  if (out.some((d) => d < 1)) {
    throw new ShapeError(`Conv: kernel ${formatShape(g.kernel)} does not fit input ${formatShape(x.shape)} with the given pads and dilations`);
  }
  return x.graph.addNode('Conv', b ? [x, w, b] : [x, w], convAttributes(g), [{ dtype: x.dtype, shape: [n, cout, ...out] }])[0];
}

/**
 * N-D transposed convolution (ONNX ConvTranspose): x [N, Cin, ...spatial], w [Cin, Cout / groups, ...kernel],
 * optional b [Cout]. Output size s(D-1) + outputPadding + d(k-1) + 1 - padBegin - padEnd.
 */
export function convTranspose(x: Tensor, w: Tensor, b?: Tensor | null, options: ConvTransposeOptions = {}): Tensor {
  const groups = options.groups ?? 1;
  checkOperands('ConvTranspose', x, w, b, (ws) => ws[1] * groups);
  const g = resolve('ConvTranspose', w.shape.slice(2), options);
  const [n, cin, ...spatial] = x.shape;
  const outputPadding = options.outputPadding ?? spatial.map(() => 0);
  if (outputPadding.length !== spatial.length || outputPadding.some((p, i) => !Number.isInteger(p) || p < 0 || p >= g.strides[i])) {
    throw new ShapeError(`ConvTranspose: output padding [${outputPadding.join(', ')}] must be one non-negative value per axis below its stride`);
  }
  if (cin !== w.shape[0] || cin % g.groups !== 0) {
    throw new ShapeError(`ConvTranspose: input ${formatShape(x.shape)} and weight ${formatShape(w.shape)} do not fit with ${g.groups} group(s)`);
  }
  const out = spatial.map((d, i) => g.strides[i] * (d - 1) + outputPadding[i] + reach(g, i) + 1 - g.begins[i] - g.ends[i]);
  if (out.some((d) => d < 1)) throw new ShapeError(`ConvTranspose: pads leave no output for input ${formatShape(x.shape)}`);
  return x.graph.addNode('ConvTranspose', b ? [x, w, b] : [x, w], convAttributes(g, outputPadding), [
    { dtype: x.dtype, shape: [n, w.shape[1] * g.groups, ...out] },
  ])[0];
}

/**
 * Reverses every spatial axis of a kernel [A, B, ...kernel], which reverses its taps in row-major order: a MatMul of
 * [A * B, taps] by the taps' reversal permutation, exact for finite weights and 6x faster than a Slice with steps
 * of -1 ([192, 192, 3, 3, 3]: 1.4 against 8.7 ms).
 */
function flipKernel(w: Tensor): Tensor {
  const taps = size(w.shape.slice(2));
  if (taps === 1) return w;
  const reversal = Array.from({ length: taps * taps }, (_, i) => (i % taps === taps - 1 - Math.floor(i / taps) ? 1 : 0));
  const permutation = w.graph.constant(typedArrayOf(w.dtype, reversal), w.dtype, [taps, taps], 'tap_reversal');
  return reshape(matmul(reshape(w, [-1, taps]), permutation), w.shape);
}

/** [G*A, B, ...k] -> [G*B, A, ...k]: swaps the two channel axes within each group. */
function swapChannelsPerGroup(w: Tensor, groups: number): Tensor {
  const [a, b, ...k] = w.shape;
  const spatial = range(k.length, 3);
  if (groups === 1) return transpose(w, [1, 0, ...range(k.length, 2)]);
  const split = reshape(w, [groups, a / groups, b, ...k]);
  return reshape(transpose(split, [0, 2, 1, ...spatial]), [groups * b, a / groups, ...k]);
}

/** Keeps `[begin, begin + length)` of each spatial axis where that is not the whole axis. */
function cropSpatial(x: Tensor, begins: readonly number[], lengths: readonly number[]): Tensor {
  const axes = range(lengths.length, 2).filter((a, i) => begins[i] !== 0 || lengths[i] !== x.shape[a]);
  if (axes.length === 0) return x;
  return slice(x, {
    starts: axes.map((a) => begins[a - 2]),
    ends: axes.map((a) => begins[a - 2] + lengths[a - 2]),
    axes,
  });
}

/**
 * Per spatial axis, the padding of gy [N, C, ...out] (stride 1) that puts gy[i + reach - t*d] against x[i] for every
 * tap t, over the reach + D positions the taps read: reach - begin in front, D + begin - O at the back. Negative
 * where the forward pad exceeds the kernel's reach: gy is cropped there instead.
 */
function gyPadsAgainstInput(g: Geometry, spatial: Shape, out: Shape): { front: number[]; back: number[] } {
  return { front: spatial.map((_, i) => reach(g, i) - g.begins[i]), back: spatial.map((d, i) => d + g.begins[i] - out[i]) };
}

/** t [N, C, ...] cropped where a pad is negative; the remaining pads (front then back, none negative). */
function cropNegativePads(t: Tensor, front: readonly number[], back: readonly number[]): { cropped: Tensor; pads: number[] } {
  const cropped = cropSpatial(
    t,
    front.map((f) => Math.max(0, -f)),
    t.shape.slice(2).map((d, i) => d - Math.max(0, -front[i]) - Math.max(0, -back[i])),
  );
  return { cropped, pads: [...front, ...back].map((p) => Math.max(0, p)) };
}

/**
 * d(loss)/dx of y = Conv(x, w) from gy = d(loss)/dy. Stride 1: a Conv of gy with the flipped, channel-swapped
 * kernel, because ONNX Runtime's CPU ConvTranspose runs 7-12x slower than a Conv of the same size (see
 * bench/graph-ops.bench.ts). Strided: ConvTranspose, the exact adjoint, slow but only needed where a strided
 * conv's input needs a gradient (the VoCo encoders' one strided conv, the patch embedding, reads the images).
 */
function convInputGradient(gy: Tensor, w: Tensor, g: Geometry, xShape: Shape): Tensor {
  const spatial = xShape.slice(2);
  const out = gy.shape.slice(2);
  if (g.strides.every((s) => s === 1)) {
    // x[i] receives gy[j] w[t] for i = j + t*d - begin: with gy padded as gyPadsAgainstInput says, a correlation
    // with the reversed kernel.
    const { front, back } = gyPadsAgainstInput(g, spatial, out);
    const { cropped, pads } = cropNegativePads(gy, front, back);
    const kernel = flipKernel(swapChannelsPerGroup(w, g.groups));
    return conv(cropped, kernel, null, { pads, dilations: g.dilations, groups: g.groups });
  }
  const produced = spatial.map((_, i) => g.strides[i] * (out[i] - 1) + reach(g, i) + 1 - g.begins[i] - g.ends[i]);
  return convTranspose(gy, w, null, {
    strides: g.strides,
    pads: [...g.begins, ...g.ends],
    dilations: g.dilations,
    groups: g.groups,
    outputPadding: spatial.map((d, i) => d - produced[i]),
  });
}

/** [N, C, ...] -> [C, N, ...]: channels become the batch and the batch becomes channels. */
function swapBatchAndChannels(x: Tensor): Tensor {
  return transpose(x, [1, 0, ...range(x.rank - 2, 2)]);
}

/** Every tap of a kernel as a multi-index, in the weight's row-major order. */
function kernelTaps(kernel: readonly number[]): number[][] {
  return kernel.reduce<number[][]>((taps, k) => taps.flatMap((t) => range(k).map((i) => [...t, i])), [[]]);
}

/**
 * d(loss)/dw [Cout, Cin/G, ...k] of y = Conv(x, w) from gy [N, Cout, ...out]. The forms below are exact; which is
 * faster on ONNX Runtime's CPU provider depends on the stride and the size (bench/graph-ops.bench.ts): at stride 1
 * contiguous Slices and MatMuls win (1.6x at 48 channels, even at 12), over slabs of the first axis where that axis
 * is long; strided Slices are slow and lose to the swapped Conv.
 */
function convWeightGradient(x: Tensor, gy: Tensor, g: Geometry): Tensor {
  if (!g.strides.every((s) => s === 1)) return weightGradientBySwappedConv(x, gy, g);
  const planes = slabPlanes(x, gy, g);
  return planes > 0 ? weightGradientBySlabs(x, gy, g, planes) : weightGradientPerTap(x, gy, g);
}

/** How far past the input's end the taps read (in padded coordinates: up to s(O-1) + d(k-1)); may be negative. */
function readPastEnd(g: Geometry, spatial: Shape, out: Shape): number[] {
  return spatial.map((d, i) => g.strides[i] * (out[i] - 1) + reach(g, i) + 1 - d - g.begins[i]);
}

/** [N, C, ...] as [G, C/G, N*P]: whole rows of P positions move (a transpose with a short inner axis would not). */
function groupColumns(t: Tensor, groups: number): Tensor {
  const [n, c, ...spatial] = t.shape;
  const positions = size(spatial);
  return reshape(transpose(reshape(t, [n, groups, c / groups, positions]), [1, 2, 0, 3]), [groups, c / groups, n * positions]);
}

/** t [N, C, ...] with its batch and channels swapped, padded (or cropped, where negative) by `front` and `back`. */
function paddedByChannel(t: Tensor, front: readonly number[], back: readonly number[]): Tensor {
  const { cropped, pads } = cropNegativePads(swapBatchAndChannels(t), front, back);
  const rank = front.length;
  return pads.some((p) => p > 0) ? pad(cropped, [0, 0, ...pads.slice(0, rank), 0, 0, ...pads.slice(rank)]) : cropped;
}

/**
 * dw[co, ci, t] = sum over n and output positions p of gy[n, co, p] x[n, ci, p + t*d - begin]: per kernel tap, one
 * MatMul of gy's and x's [C/G, N*P] rows per group, one operand the positions the tap reads (a Slice), the second
 * read transposed, giving [Cout/G, Cin/G]. The Slices are taken of whichever of x and gy has fewer channels: of x padded as the forward pads it,
 * or of gy padded as gyPadsAgainstInput says, so that x[i] meets gy[i + reach - t*d]. Each Slice is freed once its
 * MatMul has run. With one input channel per group, the reads of x are stacked into one MatMul.
 */
function weightGradientPerTap(x: Tensor, gy: Tensor, g: Geometry): Tensor {
  const [, cin, ...spatial] = x.shape;
  const [, cout, ...out] = gy.shape;
  const groups = g.groups;
  const taps = kernelTaps(g.kernel);
  const readsOf = (from: Tensor, starts: (t: number[]) => number[], lengths: Shape): Tensor[] =>
    taps.map((t) => {
      const read = cropSpatial(from, starts(t), lengths);
      return reshape(read, [groups, read.shape[0] / groups, -1]);
    });
  // Each tap's [G, Cout/G, Cin/G] stacked, then the tap axis moved last: a single axis moving inwards, which ONNX
  // Runtime transposes several times faster than a permutation that also swaps the channel axes.
  const assemble = (perTap: Tensor[]): Tensor =>
    reshape(transpose(reshape(concat(perTap, 0), [taps.length, groups, ...perTap[0].shape.slice(1)]), [1, 2, 3, 0]), [cout, cin / groups, ...g.kernel]);
  if (cout < cin) {
    const { front, back } = gyPadsAgainstInput(g, spatial, out);
    const reads = readsOf(paddedByChannel(gy, front, back), (t) => t.map((ti, i) => reach(g, i) - ti * g.dilations[i]), spatial);
    const xColumns = transposeLast2(groupColumns(x, groups));
    return assemble(reads.map((read) => matmul(read, xColumns)));
  }
  const ends = readPastEnd(g, spatial, out).map((e) => Math.max(0, e));
  const reads = readsOf(paddedByChannel(x, g.begins, ends), (t) => t.map((ti, i) => ti * g.dilations[i]), out);
  const gyRows = groupColumns(gy, groups);
  if (cin === groups) {
    // One input channel per group (the images' first conv): the taps' reads, stacked as [G, taps, N*P], are
    // small, and one MatMul then reads gy once instead of once per tap.
    return reshape(matmul(gyRows, transposeLast2(concat(reads, 1))), [cout, 1, ...g.kernel]);
  }
  return assemble(reads.map((read) => matmul(gyRows, transposeLast2(read))));
}

/** From this output length of the first spatial axis on, the stride-1 weight gradient runs over slabs of it. */
const SLAB_MIN_LENGTH = 16;
/** At most this many output planes a slab, and at most this many values of x (2 MB) in their read. */
const SLAB_MAX_PLANES = 4;
const SLAB_MAX_VALUES = 2 ** 19;

/** Output planes per slab of weightGradientBySlabs (one group, several input channels, a long first axis), else 0. */
function slabPlanes(x: Tensor, gy: Tensor, g: Geometry): number {
  const [n, cin] = x.shape;
  const out = gy.shape.slice(2);
  if (g.groups !== 1 || cin === 1 || out[0] < SLAB_MIN_LENGTH) return 0;
  const plane = size(out.slice(1).map((o, i) => o + reach(g, i + 1)));
  return largestDivisor(out[0], Math.min(SLAB_MAX_PLANES, SLAB_MAX_VALUES / (n * cin * plane)));
}

/**
 * The weight gradient of a stride-1 conv (one group) as a Scan over slabs of `planes` output planes along the first
 * spatial axis. x padded as the forward pads it (and by one plane more at the end) and gy padded at the end of the
 * other axes to the same extents lie on one grid, on which each tap t is a single offset o(t) once a slab is
 * flattened per sample and channel: dw[t] = sum over p of gy[p] x[p + o(t)]; where a read runs past a row, gy is a
 * pad and zero. A slab's reads are contiguous runs of values in cache, where per-tap Slices of the whole tensors are
 * rows of a few dozen values streamed from memory: 1.9x at [2, 12, 64^3] (docs/performance.md).
 */
function weightGradientBySlabs(x: Tensor, gy: Tensor, g: Geometry, planes: number): Tensor {
  const [n, cin] = x.shape;
  const [, cout, ...out] = gy.shape;
  const extents = out.map((o, i) => o + reach(g, i));
  const xp = pad(x, [0, 0, ...g.begins, 0, 0, ...g.ends.map((e, i) => (i === 0 ? e + 1 : e))]);
  const gyp = pad(gy, [0, 0, ...out.map(() => 0), 0, 0, ...out.map((o, i) => (i === 0 ? 0 : extents[i] - o))]);
  const rowStrides = extents.map((_, i) => size(extents.slice(i + 1)));
  const taps = kernelTaps(g.kernel);
  const offsets = taps.map((t) => t.reduce((o, ti, i) => o + ti * g.dilations[i] * rowStrides[i], 0));
  const count = out[0] / planes;
  const readPlanes = planes + reach(g, 0) + 1;
  const read = readPlanes * rowStrides[0];
  const length = planes * rowStrides[0];
  const starts = reshape(int64s(x.graph, range(count).map((i) => i * planes), 'slab_starts'), [count, 1]);
  const { outputs } = scan([], [starts], (body, _, [start]) => {
    const xs = reshape(sliceAt(body.capture(xp), start, readPlanes, 2), [n, cin, read]);
    const gyRows = transposeLast2(reshape(sliceAt(body.capture(gyp), start, planes, 2), [n, cout, length]));
    const perTap = offsets.map((o) => reshape(matmul(slice(xs, { starts: [o], ends: [o + length], axes: [2] }), gyRows), [n, 1, cin, cout]));
    return { states: [], outputs: [concat(perTap, 1)] };
  });
  const summed = sumLeading(outputs[0], 2);
  return reshape(transpose(summed, [2, 1, 0]), [cout, cin, ...g.kernel]);
}

/**
 * A Conv over channel-swapped tensors: x as [Cin/G, G*N, ...] (batch becomes channels) correlated with gy as the
 * kernel [Cout, N, ...out], with the forward's stride as dilation and its dilation as stride.
 */
function weightGradientBySwappedConv(x: Tensor, gy: Tensor, g: Geometry): Tensor {
  const [n, cin, ...spatial] = x.shape;
  const [, cout, ...out] = gy.shape;
  const groups = g.groups;
  const rest = range(spatial.length, 3);
  const input =
    groups === 1
      ? swapBatchAndChannels(x)
      : reshape(transpose(reshape(x, [n, groups, cin / groups, ...spatial]), [2, 1, 0, ...rest]), [cin / groups, groups * n, ...spatial]);
  const kernel =
    groups === 1
      ? swapBatchAndChannels(gy)
      : reshape(transpose(reshape(gy, [n, groups, cout / groups, ...out]), [1, 2, 0, ...rest]), [cout, n, ...out]);
  const past = readPastEnd(g, spatial, out);
  const trimmed = cropSpatial(input, spatial.map(() => 0), spatial.map((d, i) => Math.min(d, d + past[i])));
  const dw = conv(trimmed, kernel, null, {
    strides: g.dilations,
    dilations: g.strides,
    pads: [...g.begins, ...past.map((p) => Math.max(0, p))],
    groups,
  });
  return swapBatchAndChannels(dw);
}

const spatialAndBatchAxes = (t: Tensor): number[] => [0, ...range(t.rank - 2, 2)];

export const convGradients: GradientTable = {
  Conv: ({ node, inputs: [x, w, b], grad, needs }) => {
    const g = geometryOf(node);
    return [
      needs[0] ? convInputGradient(grad, w!, g, x!.shape) : null,
      needs[1] ? convWeightGradient(x!, grad, g) : null,
      b && needs[2] ? reduceSum(grad, spatialAndBatchAxes(grad)) : null,
    ];
  },
  // y = ConvTranspose(x, w) is the adjoint of a Conv with weight w: its input gradient is that Conv applied to gy,
  // and its weight gradient is that Conv's weight gradient with the roles of input and output gradient exchanged.
  ConvTranspose: ({ node, inputs: [x, w, b], grad, needs }) => {
    const g = geometryOf(node);
    const options = { strides: g.strides, pads: [...g.begins, ...g.ends], dilations: g.dilations, groups: g.groups };
    return [
      needs[0] ? conv(grad, w!, null, options) : null,
      needs[1] ? convWeightGradient(grad, x!, g) : null,
      b && needs[2] ? reduceSum(grad, spatialAndBatchAxes(grad)) : null,
    ];
  },
};
