import { Rng } from '../../common/rng';
import { Graph, Tensor } from '../../graph/core/graph';
import { gradients } from '../../graph/autodiff/backward';
import { ConvTransposeOptions, conv, convTranspose } from '../../graph/ops/conv';
import { mul } from '../../graph/ops/elementwise';
import { reduceSum } from '../../graph/ops/reduce';
import { reshape } from '../../graph/ops/shape';
import { cpuSession, runSession } from '../helpers/ort';
import { ConvKind, RefGeometry, outputShape, product, reference } from './conv-reference';

interface Case {
  readonly x: readonly number[];
  readonly w: readonly number[];
  readonly strides?: readonly number[];
  readonly pads?: readonly number[];
  readonly dilations?: readonly number[];
  readonly groups?: number;
  readonly outputPadding?: readonly number[];
  readonly bias?: boolean;
}

function geometry(c: Case): RefGeometry {
  const r = c.x.length - 2;
  const ones = Array<number>(r).fill(1);
  return {
    strides: c.strides ?? ones,
    pads: c.pads ?? Array<number>(2 * r).fill(0),
    dilations: c.dilations ?? ones,
    groups: c.groups ?? 1,
    outputPadding: c.outputPadding ?? Array<number>(r).fill(0),
  };
}

/** Standard normal values rounded to float32, so ONNX Runtime and the float64 reference see the same numbers. */
function randomValues(rng: Rng, count: number): Float64Array {
  return Float64Array.from({ length: count }, () => Math.fround(rng.normal()));
}

/**
 * ONNX Runtime computes in float32 (its CPU provider has no float64 Conv); every value is a sum of at most a few
 * hundred products of O(1) numbers, whose float32 rounding stays far below 1e-4 * (1 + |reference|), while a wrong
 * tap, flip or pad gives errors of O(1).
 */
function expectClose(name: string, actual: Float32Array | Float64Array, expected: Float64Array): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / (1 + Math.abs(expected[i])));
  if (!(worst <= 1e-4)) throw new Error(`${name}: worst error ${worst.toExponential(3)} exceeds 1e-4`);
}

/**
 * Builds kind(x, w, b) and the autodiff gradients of sum(y * gy), runs them on ONNX Runtime and compares y and
 * every gradient with the float64 reference. Returns the operator types the backward pass used.
 */
async function check(kind: ConvKind, c: Case, seed = 1): Promise<Set<string>> {
  const rng = new Rng(seed);
  const geom = geometry(c);
  const cout = kind === 'Conv' ? c.w[0] : c.w[1] * geom.groups;
  const values = { x: randomValues(rng, product(c.x)), w: randomValues(rng, product(c.w)), b: randomValues(rng, cout) };
  const g = new Graph();
  const x = g.input('x', 'float32', c.x);
  const w = g.input('w', 'float32', c.w);
  const b = c.bias === false ? null : g.input('b', 'float32', [cout]);
  const options: ConvTransposeOptions = { ...geom, outputPadding: kind === 'Conv' ? undefined : geom.outputPadding };
  const y = kind === 'Conv' ? conv(x, w, b, options) : convTranspose(x, w, b, options);
  const gyValues = randomValues(rng, product(y.shape));
  const ref = reference(kind, values.x, c.x, values.w, c.w, b ? values.b : null, geom, gyValues);
  expect(y.shape).toEqual(ref.yShape);

  const forwardNodes = g.nodes.length;
  const gy = g.constant(Float32Array.from(gyValues), 'float32', y.shape, 'gy');
  const loss = reduceSum(reshape(mul(y, gy), [-1]), [0]);
  const wrt = b ? [x, w, b] : [x, w];
  const grads = gradients(loss, wrt);
  const named = (n: string, t: Tensor) => ({ name: n, tensor: t });
  const session = await cpuSession({
    name: 'conv',
    inputs: wrt,
    outputs: [named('y', y), named('dx', grads.get(x)!), named('dw', grads.get(w)!), ...(b ? [named('db', grads.get(b)!)] : [])],
  });
  const feeds = new Map<Tensor, Float32Array>([
    [x, Float32Array.from(values.x)],
    [w, Float32Array.from(values.w)],
  ]);
  if (b) feeds.set(b, Float32Array.from(values.b));
  const out = await runSession(session, feeds);
  expectClose('y', out.y, ref.y);
  expectClose('dx', out.dx, ref.dx);
  expectClose('dw', out.dw, ref.dw);
  if (b) expectClose('db', out.db, ref.db);
  return new Set(g.nodes.slice(forwardNodes).map((n) => n.opType));
}

describe('the float64 reference itself', () => {
  test('its tap-by-tap gradients equal central differences of its own forward', () => {
    const rng = new Rng(7);
    const c = { x: [1, 2, 5, 4], w: [3, 2, 3, 2] };
    const geom = geometry({ ...c, strides: [2, 1], pads: [1, 0, 0, 1], dilations: [1, 2] });
    const x = randomValues(rng, product(c.x));
    const w = randomValues(rng, product(c.w));
    const b = randomValues(rng, 3);
    const gy = randomValues(rng, product(outputShape('Conv', c.x, c.w, geom)));
    const base = reference('Conv', x, c.x, w, c.w, b, geom, gy);
    const loss = () => reference('Conv', x, c.x, w, c.w, b, geom, gy).y.reduce((s, v, i) => s + v * gy[i], 0);
    for (const [values, analytic] of [
      [x, base.dx],
      [w, base.dw],
      [b, base.db],
    ] as const) {
      for (const k of [0, 1, values.length - 1]) {
        const original = values[k];
        values[k] = original + 1e-3;
        const plus = loss();
        values[k] = original - 1e-3;
        const minus = loss();
        values[k] = original;
        expect(Math.abs((plus - minus) / 2e-3 - analytic[k])).toBeLessThan(1e-8);
      }
    }
  });
});

describe('Conv forward and gradients match a float64 direct convolution', () => {
  test('3-D kernel 3, stride 1, pad 1 (the encoder blocks): the input gradient is a Conv, not a ConvTranspose', async () => {
    const ops = await check('Conv', { x: [2, 3, 5, 6, 4], w: [4, 3, 3, 3, 3], pads: [1, 1, 1, 1, 1, 1] });
    expect(ops.has('Conv')).toBe(true);
    expect(ops.has('ConvTranspose')).toBe(false);
  });
  test('one input channel per group (the taps stacked into one MatMul): a single-channel image, and depthwise', async () => {
    await check('Conv', { x: [2, 1, 5, 6, 4], w: [4, 1, 3, 3, 3], pads: [1, 1, 1, 1, 1, 1] });
    await check('Conv', { x: [2, 2, 4, 5, 3], w: [4, 1, 3, 3, 3], pads: [1, 0, 1, 1, 1, 0], dilations: [1, 2, 1], groups: 2 });
  });
  test('fewer output than input channels (the weight gradient slices gy per tap): pads, dilation, crop, groups', async () => {
    await check('Conv', { x: [2, 4, 5, 6, 4], w: [2, 4, 3, 3, 3], pads: [1, 1, 1, 1, 1, 1] });
    await check('Conv', { x: [2, 3, 6, 5, 7], w: [2, 3, 3, 2, 3], dilations: [2, 2, 1], pads: [2, 0, 1, 1, 2, 0] });
    await check('Conv', { x: [1, 3, 3, 4, 2], w: [2, 3, 1, 1, 1], pads: [1, 0, 2, 0, 1, 1], bias: false });
    await check('Conv', { x: [2, 4, 4, 5, 3], w: [2, 2, 3, 3, 3], pads: [1, 1, 1, 1, 1, 1], groups: 2 });
  });
  test('a first axis of 16 outputs or more (the weight gradient as a Scan over slabs): pads, dilation, fewer outputs, 2-D', async () => {
    const slabbed = [
      await check('Conv', { x: [2, 3, 16, 5, 4], w: [4, 3, 3, 3, 3], pads: [1, 1, 1, 1, 1, 1] }),
      await check('Conv', { x: [1, 4, 20, 6, 5], w: [2, 4, 3, 2, 3], dilations: [2, 1, 2], pads: [2, 0, 1, 1, 1, 2] }),
      await check('Conv', { x: [2, 2, 18, 7], w: [3, 2, 3, 3], pads: [0, 1, 2, 1], bias: false }),
    ];
    for (const ops of slabbed) expect(ops.has('Scan')).toBe(true);
  });
  test('3-D kernel 1 without bias, and kernel 1 with a pad larger than its reach (gradient cropped)', async () => {
    await check('Conv', { x: [2, 4, 3, 3, 2], w: [2, 4, 1, 1, 1], bias: false });
    await check('Conv', { x: [1, 2, 3, 4, 2], w: [3, 2, 1, 1, 1], pads: [1, 0, 2, 0, 1, 1] });
  });
  test('3-D kernel 3, stride 2, pad 1 on odd sizes', async () => {
    await check('Conv', { x: [2, 2, 7, 6, 5], w: [3, 2, 3, 3, 3], strides: [2, 2, 2], pads: [1, 1, 1, 1, 1, 1] });
  });
  test('3-D kernel 2, stride 2 (patch embedding), also on sizes that leave a remainder', async () => {
    await check('Conv', { x: [2, 2, 4, 6, 2], w: [5, 2, 2, 2, 2], strides: [2, 2, 2] });
    await check('Conv', { x: [1, 2, 5, 4, 3], w: [3, 2, 2, 2, 2], strides: [2, 2, 2] });
  });
  test('3-D dilation 2 with asymmetric pads, and stride 2 with dilation 2', async () => {
    await check('Conv', { x: [2, 2, 6, 5, 7], w: [3, 2, 3, 2, 3], dilations: [2, 2, 1], pads: [2, 0, 1, 1, 2, 0] });
    await check('Conv', { x: [1, 2, 8, 7, 6], w: [2, 2, 3, 3, 2], strides: [2, 3, 2], dilations: [2, 1, 2], pads: [1, 0, 0, 0, 2, 1] });
  });
  test('2 groups', async () => {
    await check('Conv', { x: [2, 4, 4, 5, 3], w: [6, 2, 3, 3, 3], pads: [1, 1, 1, 1, 1, 1], groups: 2 });
    await check('Conv', { x: [1, 4, 5, 5, 4], w: [2, 2, 3, 3, 3], strides: [2, 2, 2], groups: 2 });
  });
  test('1-D and 2-D', async () => {
    await check('Conv', { x: [2, 3, 9], w: [2, 3, 3], pads: [1, 2], strides: [2] });
    await check('Conv', { x: [2, 3, 6, 5], w: [4, 3, 3, 2], pads: [1, 0, 1, 1] });
  });
});

describe('ConvTranspose forward and gradients match a float64 direct convolution', () => {
  test('3-D kernel 2, stride 2 (UNETR up-sampling) and kernel 3, stride 2, output padding 1', async () => {
    await check('ConvTranspose', { x: [2, 3, 3, 2, 2], w: [3, 2, 2, 2, 2], strides: [2, 2, 2] });
    await check('ConvTranspose', { x: [1, 2, 3, 4, 2], w: [2, 3, 3, 3, 3], strides: [2, 2, 2], pads: [1, 1, 1, 1, 1, 1], outputPadding: [1, 0, 1] });
  });
  test('3-D kernel 3, stride 1, dilation 2 without bias, and 2 groups', async () => {
    await check('ConvTranspose', { x: [2, 2, 3, 4, 3], w: [2, 3, 3, 3, 3], dilations: [2, 1, 2], pads: [1, 1, 0, 2, 1, 0], bias: false });
    await check('ConvTranspose', { x: [1, 4, 3, 3, 2], w: [4, 1, 3, 3, 3], pads: [1, 1, 1, 1, 1, 1], groups: 2 });
  });
});

describe('shape inference', () => {
  const g = new Graph();
  test('names the op and the shapes on mismatch', () => {
    const x = g.input('sx', 'float32', [1, 3, 4, 4, 4]);
    expect(() => conv(x, g.input('w1', 'float32', [2, 4, 3, 3, 3]))).toThrow(/Conv: input \[1, 3, 4, 4, 4\] and weight \[2, 4, 3, 3, 3\]/);
    expect(() => conv(x, g.input('w2', 'float32', [2, 3, 5, 5, 5]))).toThrow(/Conv: kernel \[5, 5, 5\] does not fit/);
    expect(() => conv(x, g.input('w3', 'float32', [2, 3, 3, 3, 3]), g.input('b3', 'float32', [3]))).toThrow(/bias does not fit/);
    expect(() => convTranspose(x, g.input('w4', 'float32', [3, 2, 2, 2, 2]), null, { strides: [2, 2, 2], outputPadding: [2, 0, 0] })).toThrow(
      /output padding/,
    );
  });
  test('infers ONNX output sizes', () => {
    const x = g.input('ix', 'float32', [2, 3, 9, 8, 7]);
    expect(conv(x, g.input('iw', 'float32', [5, 3, 3, 3, 3]), null, { strides: [2, 2, 2], pads: [1, 1, 1, 1, 1, 1] }).shape).toEqual([2, 5, 5, 4, 4]);
    expect(convTranspose(x, g.input('it', 'float32', [3, 4, 2, 2, 2]), null, { strides: [2, 2, 2] }).shape).toEqual([2, 4, 18, 16, 14]);
  });
});
