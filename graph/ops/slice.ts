import { Tensor, attr } from '../core/graph';
import { ShapeError, formatShape, normaliseAxis, sameShape } from '../core/shape';
import { GradientTable } from '../autodiff/rule';
import { add, sum, zerosLike } from './elementwise';
import { int64s } from './int64';
import { reduceSum } from './reduce';
import { reshape } from './shape';

export interface SliceSpec {
  /** Per sliced axis; negative values count from the end, out-of-range values are clamped (±Infinity allowed). */
  readonly starts: readonly number[];
  readonly ends: readonly number[];
  /** Default: the first `starts.length` axes. */
  readonly axes?: readonly number[];
  /** Default: all 1; a negative step walks backwards from `start` down to just above `end`. */
  readonly steps?: readonly number[];
}

/** One axis of a slice after ONNX's resolution: the first index taken, the step and how many are taken. */
interface AxisRange {
  readonly start: number;
  readonly end: number;
  readonly step: number;
  readonly length: number;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(Math.max(v, lo), hi);
}

/** ONNX Slice's rule for one axis: negative indices count from the end, then clamp by the step's direction. */
function resolveAxis(dim: number, start: number, end: number, step: number): AxisRange {
  const from = start < 0 ? start + dim : start;
  const to = end < 0 ? end + dim : end;
  const s = step > 0 ? clamp(from, 0, dim) : clamp(from, 0, dim - 1);
  const e = step > 0 ? clamp(to, 0, dim) : clamp(to, -1, dim - 1);
  return { start: s, end: e, step, length: Math.max(0, Math.ceil((e - s) / step)) };
}

/** Every axis's range (unsliced axes whole) and the sliced axes, checking the spec against `x`. */
function plan(x: Tensor, spec: SliceSpec): { ranges: AxisRange[]; axes: number[] } {
  const count = spec.starts.length;
  const axesGiven = spec.axes ?? spec.starts.map((_, i) => i);
  const steps = spec.steps ?? spec.starts.map(() => 1);
  const context = `${formatShape(x.shape)} with starts [${spec.starts.join(', ')}], ends [${spec.ends.join(', ')}]`;
  if (spec.ends.length !== count || axesGiven.length !== count || steps.length !== count) {
    throw new ShapeError(`Slice: starts, ends, axes and steps differ in length for ${context}`);
  }
  const isIndex = (v: number): boolean => Number.isInteger(v) || v === Infinity || v === -Infinity;
  if (![...spec.starts, ...spec.ends].every(isIndex)) throw new ShapeError(`Slice: non-integer bound in ${context}`);
  if (!steps.every((s) => Number.isInteger(s) && s !== 0)) throw new ShapeError(`Slice: steps [${steps.join(', ')}] must be non-zero integers for ${context}`);
  const axes = axesGiven.map((a) => normaliseAxis('Slice', a, x.rank));
  if (new Set(axes).size !== axes.length) throw new ShapeError(`Slice: repeated axis in [${axesGiven.join(', ')}] for ${context}`);
  const ranges = x.shape.map((d) => resolveAxis(d, 0, d, 1));
  axes.forEach((a, i) => (ranges[a] = resolveAxis(x.shape[a], spec.starts[i], spec.ends[i], steps[i])));
  return { ranges, axes };
}

/**
 * ONNX Slice (with steps). The emitted starts and ends are the resolved ones, so they are exact int64 values;
 * an end of -1 under a negative step ("run through index 0") is written as -dim-1, which ONNX resolves back to -1.
 */
export function slice(x: Tensor, spec: SliceSpec): Tensor {
  const { ranges, axes } = plan(x, spec);
  const g = x.graph;
  const ends = axes.map((a) => (ranges[a].end === -1 ? -x.shape[a] - 1 : ranges[a].end));
  const inputs = [
    x,
    int64s(g, axes.map((a) => ranges[a].start), 'starts'),
    int64s(g, ends, 'ends'),
    int64s(g, axes, 'axes'),
    int64s(g, axes.map((a) => ranges[a].step), 'steps'),
  ];
  return g.addNode('Slice', inputs, {}, [{ dtype: x.dtype, shape: ranges.map((r) => r.length) }])[0];
}

/**
 * `length` elements along `axis` from `start`, an int64 [1] computed in the graph (a window a Scan body moves along
 * the axis). The window must lie within the axis: ONNX would clamp it, and the shape here would then be wrong.
 */
export function sliceAt(x: Tensor, start: Tensor, length: number, axis: number): Tensor {
  const a = normaliseAxis('Slice', axis, x.rank);
  if (start.dtype !== 'int64' || !sameShape(start.shape, [1])) throw new ShapeError(`Slice: a computed start must be int64 [1], got ${start.dtype}${formatShape(start.shape)}`);
  if (!Number.isInteger(length) || length < 1 || length > x.shape[a]) throw new ShapeError(`Slice: ${length} elements do not fit axis ${axis} of ${formatShape(x.shape)}`);
  const g = x.graph;
  const inputs = [x, start, add(start, int64s(g, [length], 'length')), int64s(g, [a], 'axes')];
  return g.addNode('Slice', inputs, {}, [{ dtype: x.dtype, shape: x.shape.map((d, i) => (i === a ? length : d)) }])[0];
}

/** Reverses the order of elements along `axes`. */
function reverse(x: Tensor, axes: readonly number[]): Tensor {
  return slice(x, { starts: axes.map(() => -1), ends: axes.map(() => -Infinity), axes, steps: axes.map(() => -1) });
}

/** The elements of `x` from `from` up to `to` along one axis. */
function along(x: Tensor, axis: number, from: number, to: number): Tensor {
  return slice(x, { starts: [from], ends: [to], axes: [axis] });
}

/** ONNX pads (all begins, then all ends) that pad only `axis`. */
function padsOnAxis(rank: number, axis: number, begin: number, end: number): number[] {
  const pads = new Array<number>(2 * rank).fill(0);
  pads[axis] = begin;
  pads[rank + axis] = end;
  return pads;
}

/** Puts `stride - 1` zeros after every element along `axis`: element k moves to k * stride. */
function spread(g: Tensor, axis: number, stride: number): Tensor {
  const withGap = reshape(g, [...g.shape.slice(0, axis + 1), 1, ...g.shape.slice(axis + 1)]);
  const gapped = pad(withGap, padsOnAxis(withGap.rank, axis + 1, 0, stride - 1));
  return reshape(gapped, g.shape.map((d, i) => (i === axis ? d * stride : d)));
}

/**
 * The gradient of a slice: `grad` put back at the positions the slice took from an input of `shape`, zeros
 * elsewhere, in standard ops only. Negative-step axes are reversed first, strided axes spread out with zeros,
 * then one Slice drops zeros that overhang the end and one Pad puts everything in place.
 */
function unslice(grad: Tensor, x: Tensor, ranges: readonly AxisRange[]): Tensor {
  if (ranges.some((r) => r.length === 0)) return zerosLike(x);
  const backwards = ranges.flatMap((r, a) => (r.step < 0 ? [a] : []));
  let g = backwards.length ? reverse(grad, backwards) : grad;
  const first = ranges.map((r) => (r.step > 0 ? r.start : r.start + (r.length - 1) * r.step));
  ranges.forEach((r, a) => {
    if (Math.abs(r.step) > 1) g = spread(g, a, Math.abs(r.step));
  });
  const kept = g.shape.map((len, a) => Math.min(len, x.shape[a] - first[a]));
  if (kept.some((len, a) => len < g.shape[a])) g = slice(g, { starts: kept.map(() => 0), ends: kept });
  return pad(g, [...first, ...x.shape.map((d, a) => d - first[a] - kept[a])]);
}

/** Joins tensors along `axis`; all other dimensions must agree. */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new ShapeError('Concat: no tensors given');
  const [head] = xs;
  const a = normaliseAxis('Concat', axis, head.rank);
  const fits = xs.every((t) => t.rank === head.rank && t.dtype === head.dtype && t.shape.every((d, i) => i === a || d === head.shape[i]));
  if (!fits) {
    throw new ShapeError(`Concat: ${xs.map((t) => `${t.dtype}${formatShape(t.shape)}`).join(', ')} do not fit together along axis ${axis}`);
  }
  if (xs.length === 1) return head;
  const shape = head.shape.map((d, i) => (i === a ? xs.reduce((n, t) => n + t.shape[a], 0) : d));
  return head.graph.addNode('Concat', xs, { axis: attr.int(a) }, [{ dtype: head.dtype, shape }])[0];
}

/** Cuts `x` along `axis` into consecutive parts of the given positive sizes, which must add up to the axis. */
export function split(x: Tensor, sizes: readonly number[], axis = 0): Tensor[] {
  const a = normaliseAxis('Split', axis, x.rank);
  const total = sizes.reduce((n, s) => n + s, 0);
  if (sizes.length === 0 || !sizes.every((s) => Number.isInteger(s) && s > 0) || total !== x.shape[a]) {
    throw new ShapeError(`Split: sizes [${sizes.join(', ')}] do not cut axis ${axis} of ${formatShape(x.shape)}`);
  }
  if (sizes.length === 1) return [x];
  const outputs = sizes.map((s) => ({ dtype: x.dtype, shape: x.shape.map((d, i) => (i === a ? s : d)) }));
  return x.graph.addNode('Split', [x, int64s(x.graph, sizes, 'split')], { axis: attr.int(a) }, outputs);
}

export type PadMode = 'constant' | 'edge' | 'reflect';

export interface PadOptions {
  readonly mode?: PadMode;
  /** Fill value of constant mode. */
  readonly value?: number;
}

/** Pads with non-negative `pads` in ONNX layout (all begins, then all ends); padding nothing is `x` itself. */
export function pad(x: Tensor, pads: readonly number[], options: PadOptions = {}): Tensor {
  const { mode = 'constant', value = 0 } = options;
  const context = `pads [${pads.join(', ')}] for ${formatShape(x.shape)}`;
  if (pads.length !== 2 * x.rank || !pads.every((p) => Number.isInteger(p) && p >= 0)) {
    throw new ShapeError(`Pad: ${context} must be 2 x rank non-negative integers`);
  }
  const begins = pads.slice(0, x.rank);
  const ends = pads.slice(x.rank);
  x.shape.forEach((d, a) => {
    const most = Math.max(begins[a], ends[a]);
    if (mode === 'edge' && most > 0 && d === 0) throw new ShapeError(`Pad: edge mode cannot pad the empty axis ${a} (${context})`);
    if (mode === 'reflect' && most >= d && most > 0) {
      throw new ShapeError(`Pad: reflect mode needs axis ${a} longer than its padding (${context})`);
    }
  });
  if (pads.every((p) => p === 0)) return x;
  const g = x.graph;
  const inputs = [x, int64s(g, pads, 'pads'), ...(mode === 'constant' ? [g.scalar(value, x.dtype)] : [])];
  const shape = x.shape.map((d, a) => d + begins[a] + ends[a]);
  return g.addNode('Pad', inputs, { mode: attr.string(mode) }, [{ dtype: x.dtype, shape }])[0];
}

/** Sum along `axis` keeping it, skipped when the axis has one element. */
function sumAlong(t: Tensor, axis: number): Tensor {
  return t.shape[axis] === 1 ? t : reduceSum(t, [axis], true);
}

/** Adjoint of edge padding on one axis of length `n`: the padded copies add onto the first and last elements. */
function foldEdge(g: Tensor, axis: number, n: number, begin: number, end: number): Tensor {
  if (n === 1) return sumAlong(g, axis);
  const head = sumAlong(along(g, axis, 0, begin + 1), axis);
  const tail = sumAlong(along(g, axis, begin + n - 1, begin + n + end), axis);
  return concat([head, ...(n > 2 ? [along(g, axis, begin + 1, begin + n - 1)] : []), tail], axis);
}

/**
 * Adjoint of reflect padding on one axis of length `n`: padded element `begin - k` copied x[k] and
 * `begin + n - 1 + k` copied x[n - 1 - k], so each padded block is reversed and added at those places.
 */
function foldReflect(g: Tensor, axis: number, n: number, begin: number, end: number): Tensor {
  const terms = [along(g, axis, begin, begin + n)];
  if (begin) terms.push(pad(reverse(along(g, axis, 0, begin), [axis]), padsOnAxis(g.rank, axis, 1, n - 1 - begin)));
  if (end) terms.push(pad(reverse(along(g, axis, begin + n, begin + n + end), [axis]), padsOnAxis(g.rank, axis, n - 1 - end, 1)));
  return sum(terms);
}

function constantInts(t: Tensor): number[] {
  return Array.from(t.graph.constants.get(t) as BigInt64Array, Number);
}

export const sliceGradients: GradientTable = {
  Slice: ({ inputs: [x, starts, ends, axes, steps], grad }) => {
    const spec = { starts: constantInts(starts!), ends: constantInts(ends!), axes: constantInts(axes!), steps: constantInts(steps!) };
    return [unslice(grad, x!, plan(x!, spec).ranges), null, null, null, null];
  },
  Concat: ({ node, inputs, grad, needs }) => {
    const axis = node.attributes.axis.value as number;
    const parts = split(grad, inputs.map((t) => t!.shape[axis]), axis);
    return parts.map((p, i) => (needs[i] ? p : null));
  },
  // Outputs that do not reach the loss contribute zeros.
  Split: ({ node, outputs, grads }) => [concat(grads.map((g, i) => g ?? zerosLike(outputs[i])), node.attributes.axis.value as number), null],
  // Edge and reflect padding are separable per axis, so their adjoints fold one axis at a time.
  Pad: ({ node, inputs: [x, padsInput], grad }) => {
    const pads = constantInts(padsInput!);
    const rank = x!.rank;
    const begins = pads.slice(0, rank);
    const ends = pads.slice(rank);
    const padded = x!.shape.flatMap((_, a) => (begins[a] || ends[a] ? [a] : []));
    const mode = node.attributes.mode.value as PadMode;
    if (mode === 'constant') {
      return [slice(grad, { starts: padded.map((a) => begins[a]), ends: padded.map((a) => begins[a] + x!.shape[a]), axes: padded }), null, null];
    }
    const fold = mode === 'edge' ? foldEdge : foldReflect;
    return [padded.reduce((g, a) => fold(g, a, x!.shape[a], begins[a], ends[a]), grad), null];
  },
};

