import { Rng } from '../../common/rng';
import { ConstantData, Graph, Tensor } from '../../graph/core/graph';
import { InitSpec } from '../../graph/core/init';
import { size } from '../../graph/core/shape';
import { reduceMean } from '../../graph/ops/reduce';
import {
  batchNorm1dBatchStats,
  conv3d,
  convTranspose3d,
  dropPath,
  dropout,
  fanInUniform,
  gelu,
  initialValues,
  instanceNorm3d,
  layerNorm,
  leakyRelu,
  linear,
  materialize,
} from '../../graph/nn';
import { cpuSession, runSession } from '../helpers/ort';
import { product, reference } from './conv-reference';
import { gradcheck } from '../helpers/gradcheck';

const numbers = (data: ConstantData): number[] => Array.from(data as Float64Array);
const normals = (rng: Rng, count: number): number[] => Array.from({ length: count }, () => rng.normal());

/** Runs `build` on ONNX Runtime with the given input and parameter values; returns the output. */
async function forward(
  dtype: 'float32' | 'float64',
  inputs: readonly { shape: readonly number[]; values: readonly number[] }[],
  build: (...xs: Tensor[]) => Tensor,
  parameterValues: (name: string, count: number) => readonly number[] = () => [],
): Promise<Float32Array | Float64Array> {
  const g = new Graph();
  const xs = inputs.map((spec, i) => g.input(`x${i}`, dtype, spec.shape));
  const y = build(...xs);
  const typed = (v: readonly number[]) => (dtype === 'float64' ? Float64Array.from(v) : Float32Array.from(v));
  const feeds = new Map(xs.map((t, i) => [t, typed(inputs[i].values)] as const));
  for (const p of g.parameters) feeds.set(p.tensor, typed(parameterValues(p.tensor.name, size(p.tensor.shape))));
  const session = await cpuSession({ name: 'forward', inputs: [...feeds.keys()], outputs: [{ name: 'y', tensor: y }] });
  return (await runSession(session, feeds)).y;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** Normalises consecutive groups of `inner` values found at stride `stride`: the JS reference of the norms. */
function referenceNormalise(x: readonly number[], outer: number, count: number, stride: number, eps: number): number[] {
  const y = [...x];
  for (let o = 0; o < outer; o++) {
    const base = Math.floor(o / stride) * stride * count + (o % stride);
    const at = (k: number) => base + k * stride;
    let mean = 0;
    for (let k = 0; k < count; k++) mean += x[at(k)] / count;
    let variance = 0;
    for (let k = 0; k < count; k++) variance += (x[at(k)] - mean) ** 2 / count;
    for (let k = 0; k < count; k++) y[at(k)] = (x[at(k)] - mean) / Math.sqrt(variance + eps);
  }
  return y;
}

/** erf by its Taylor series, accurate to ~1e-12 for |x| < 4. */
function erf(x: number): number {
  if (Math.abs(x) >= 4) throw new Error(`erf reference: ${x} out of range`);
  let term = x;
  let total = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    total += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * total;
}

describe('parameters: PyTorch names, shapes and default initialisers', () => {
  test('linear and conv modules create weight and bias in the current scope', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2, 5, 8]);
    g.scope('attn', () => g.scope('qkv', () => linear(x, { inFeatures: 8, outFeatures: 24 })));
    const v = g.input('v', 'float32', [1, 4, 6, 6, 6]);
    g.scope('conv1', () => conv3d(v, { inChannels: 4, outChannels: 6, kernelSize: 3, padding: 1, groups: 2 }));
    g.scope('up', () => convTranspose3d(v, { inChannels: 4, outChannels: 2, kernelSize: 2, stride: 2, bias: false }));
    g.scope('norm', () => layerNorm(x, { normalizedShape: 8 }));
    g.scope('in', () => instanceNorm3d(v, { affine: true }));
    instanceNorm3d(v);
    const bound = (fanIn: number): InitSpec => ({ kind: 'uniform', low: -1 / Math.sqrt(fanIn), high: 1 / Math.sqrt(fanIn) });
    expect(g.parameters.map((p) => [p.tensor.name, p.tensor.shape, p.init])).toEqual([
      ['attn.qkv.weight', [24, 8], bound(8)],
      ['attn.qkv.bias', [24], bound(8)],
      ['conv1.weight', [6, 2, 3, 3, 3], bound(2 * 27)],
      ['conv1.bias', [6], bound(2 * 27)],
      ['up.weight', [4, 2, 2, 2, 2], bound(2 * 8)],
      ['norm.weight', [8], { kind: 'ones' }],
      ['norm.bias', [8], { kind: 'zeros' }],
      ['in.weight', [4], { kind: 'ones' }],
      ['in.bias', [4], { kind: 'zeros' }],
    ]);
    expect(fanInUniform(27)).toEqual(bound(27));
  });

  test('shape mistakes name the module and the shapes', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2, 3, 4, 4, 4]);
    expect(() => g.scope('enc', () => conv3d(x, { inChannels: 4, outChannels: 2, kernelSize: 3 }))).toThrow(/conv3d enc\.: input \[2, 3, 4, 4, 4\] is not \[N, 4/);
    expect(() => linear(x, { inFeatures: 3, outFeatures: 2 })).toThrow(/does not end in 3 features/);
    expect(() => layerNorm(x, { normalizedShape: [3, 4] })).toThrow(/does not end in \[3, 4\]/);
    expect(() => dropPath(x, g.input('m', 'float32', [2, 3, 1, 1, 1]), 0.1)).toThrow(/dropPath: mask \[2, 3, 1, 1, 1\]/);
    expect(() => dropout(x, g.input('m2', 'float32', [2, 3, 1, 1, 1]), 1)).toThrow(/drop probability 1/);
  });

  test('materialize draws each initialiser from the seeded generator', () => {
    const stats = (v: ConstantData) => {
      const a = numbers(v);
      const mean = a.reduce((s, x) => s + x, 0) / a.length;
      return { mean, std: Math.sqrt(a.reduce((s, x) => s + (x - mean) ** 2, 0) / a.length), min: Math.min(...a), max: Math.max(...a) };
    };
    const n = [40000];
    const u = stats(materialize({ kind: 'uniform', low: -0.5, high: 0.25 }, n, 'float32', new Rng(1)));
    expect(u.min).toBeGreaterThanOrEqual(-0.5);
    expect(u.max).toBeLessThan(0.25);
    expect(u.mean).toBeCloseTo(-0.125, 2);
    expect(u.std).toBeCloseTo(0.75 / Math.sqrt(12), 2);
    const nrm = stats(materialize({ kind: 'normal', mean: 1, std: 2 }, n, 'float64', new Rng(2)));
    expect(nrm.mean).toBeCloseTo(1, 1);
    expect(nrm.std).toBeCloseTo(2, 1);
    // torch.nn.init.trunc_normal_(std=1, a=-1, b=2): that truncated normal has mean 0.2296 and std 0.7210.
    const t = stats(materialize({ kind: 'truncated-normal', std: 1, a: -1, b: 2 }, n, 'float64', new Rng(3)));
    expect(t.min).toBeGreaterThanOrEqual(-1);
    expect(t.max).toBeLessThanOrEqual(2);
    expect(t.mean).toBeCloseTo(0.2296, 1);
    expect(t.std).toBeCloseTo(0.721, 1);
    expect(numbers(materialize({ kind: 'constant', value: 3 }, [2], 'float32', new Rng(1)))).toEqual([3, 3]);
    expect(numbers(materialize({ kind: 'ones' }, [2], 'float64', new Rng(1)))).toEqual([1, 1]);
    const values = Int32Array.from([4, 5]);
    const copy = materialize({ kind: 'values', values }, [2], 'int32', new Rng(1));
    expect(numbers(copy)).toEqual([4, 5]);
    expect(copy).not.toBe(values);
    expect(() => materialize({ kind: 'truncated-normal', std: 1, a: 30, b: 31 }, [1], 'float32', new Rng(1))).toThrow(/too far out/);
  });

  test('initialValues is reproducible from the seed and follows each parameter\'s spec', () => {
    const build = () => {
      const g = new Graph();
      g.scope('fc', () => linear(g.input('x', 'float32', [3, 16]), { inFeatures: 16, outFeatures: 4 }));
      return g;
    };
    const a = initialValues(build(), new Rng(5));
    const b = initialValues(build(), new Rng(5));
    const [wa, ba] = [...a.values()];
    expect(numbers(wa)).toEqual(numbers([...b.values()][0]));
    expect(wa).toBeInstanceOf(Float32Array);
    expect(wa.length).toBe(64);
    const largest = Math.max(...numbers(wa).map(Math.abs));
    expect(largest).toBeLessThanOrEqual(0.25);
    expect(largest).toBeGreaterThan(0.2);
    expect(numbers(ba)).not.toEqual(numbers(wa).slice(0, 4));
  });
});

describe('forward values equal plain JS references', () => {
  test('conv3d with weight and bias fed by name (float32 vs float64 direct convolution)', async () => {
    const rng = new Rng(11);
    const xShape = [2, 3, 4, 5, 3];
    const wShape = [4, 3, 3, 3, 3];
    const x = normals(rng, product(xShape)).map(Math.fround);
    const params: Record<string, number[]> = {
      'c.weight': normals(rng, product(wShape)).map(Math.fround),
      'c.bias': normals(rng, 4).map(Math.fround),
    };
    const y = await forward('float32', [{ shape: xShape, values: x }], (t) => t.graph.scope('c', () => conv3d(t, { inChannels: 3, outChannels: 4, kernelSize: 3, padding: 1 })), (name) => params[name]);
    const geom = { strides: [1, 1, 1], pads: [1, 1, 1, 1, 1, 1], dilations: [1, 1, 1], groups: 1 };
    const ref = reference('Conv', Float64Array.from(x), xShape, Float64Array.from(params['c.weight']), wShape, Float64Array.from(params['c.bias']), geom, new Float64Array(2 * 4 * 60));
    // float32 sums of 81 products of O(1) values.
    expect(maxAbsDiff(y, ref.y)).toBeLessThan(1e-4);
  });

  test('instanceNorm3d, batchNorm1dBatchStats and layerNorm (float64)', async () => {
    const rng = new Rng(12);
    const shape = [2, 3, 4, 3, 2];
    const x = normals(rng, product(shape)).map((v) => 3 * v + 1);
    const yIn = await forward('float64', [{ shape, values: x }], (t) => instanceNorm3d(t));
    expect(maxAbsDiff(yIn, referenceNormalise(x, 6, 24, 1, 1e-5))).toBeLessThan(1e-12);

    const rows = normals(rng, 5 * 4);
    const yBn = await forward('float64', [{ shape: [5, 4], values: rows }], (t) => batchNorm1dBatchStats(t));
    expect(maxAbsDiff(yBn, referenceNormalise(rows, 4, 5, 4, 1e-5))).toBeLessThan(1e-12);
    const seq = normals(rng, 3 * 2 * 4);
    const yBn3 = await forward('float64', [{ shape: [3, 2, 4], values: seq }], (t) => batchNorm1dBatchStats(t, { eps: 1e-3 }));
    // Channel c of [N, C, L] gathers N * L values; arrange them as a [C, N*L] block, normalise rows, put back.
    const perChannel = (c: number) => [0, 1, 2].flatMap((n) => [0, 1, 2, 3].map((l) => n * 8 + c * 4 + l));
    for (const c of [0, 1]) {
      const idx = perChannel(c);
      const expected = referenceNormalise(idx.map((i) => seq[i]), 1, 12, 1, 1e-3);
      expect(maxAbsDiff(idx.map((i) => yBn3[i]), expected)).toBeLessThan(1e-12);
    }

    const tokens = normals(rng, 2 * 3 * 8).map((v) => 2 * v - 1);
    const weight = normals(rng, 8);
    const bias = normals(rng, 8);
    const yLn = await forward('float64', [{ shape: [2, 3, 8], values: tokens }], (t) => layerNorm(t, { normalizedShape: 8, eps: 1e-5 }), (name) => (name === 'weight' ? weight : bias));
    const normalised = referenceNormalise(tokens, 6, 8, 1, Math.fround(1e-5));
    expect(maxAbsDiff(yLn, normalised.map((v, i) => v * weight[i % 8] + bias[i % 8]))).toBeLessThan(1e-12);
    const yLn2 = await forward('float64', [{ shape: [2, 3, 8], values: tokens }], (t) => layerNorm(t, { normalizedShape: [3, 8], elementwiseAffine: false }));
    expect(maxAbsDiff(yLn2, referenceNormalise(tokens, 2, 24, 1, Math.fround(1e-5)))).toBeLessThan(1e-12);
  });

  test('gelu is the erf form (float32, as ONNX Runtime runs Erf)', async () => {
    const x = Array.from({ length: 81 }, (_, i) => Math.fround(-3.9 + 0.0975 * i));
    const y = await forward('float32', [{ shape: [81], values: x }], (t) => gelu(t));
    expect(maxAbsDiff(y, x.map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2))))).toBeLessThan(2e-6);
  });

  test('dropout and dropPath scale survivors by 1 / (1 - p) with upstream rounding; leakyRelu slopes 0.01', async () => {
    const rng = new Rng(13);
    const x = normals(rng, 2 * 3 * 2).map(Math.fround);
    const rowMask = [1, 0];
    const keep = Math.fround(1 - 0.2);
    const expected = x.map((v, i) => Math.fround(v * Math.fround(rowMask[Math.floor(i / 6)] / keep)));
    const y = await forward('float32', [{ shape: [2, 3, 2], values: x }, { shape: [2, 1, 1], values: rowMask }], (t, m) => dropPath(t, m, 0.2));
    expect(Array.from(y)).toEqual(expected);
    const mask = x.map((_, i) => i % 3 === 0 ? 0 : 1);
    const yd = await forward('float32', [{ shape: [2, 3, 2], values: x }, { shape: [2, 3, 2], values: mask }], (t, m) => dropout(t, m, 0.2));
    expect(Array.from(yd)).toEqual(x.map((v, i) => Math.fround(v * Math.fround(mask[i] / keep))));
    const yl = await forward('float32', [{ shape: [12], values: x }], (t) => leakyRelu(t));
    expect(maxAbsDiff(yl, x.map((v) => (v > 0 ? v : 0.01 * v)))).toBeLessThan(1e-7);
  });
});

describe('module gradients match finite differences', () => {
  test('linear over a rank-3 input, with and without bias (float64)', async () => {
    const r = await gradcheck([{ shape: [2, 3, 4] }], (x) => linear(x, { inFeatures: 4, outFeatures: 5 }));
    expect(r.tensors).toEqual(['x0', 'weight', 'bias']);
    await gradcheck([{ shape: [3, 4] }], (x) => linear(x, { inFeatures: 4, outFeatures: 2, bias: false }));
  });
  test('layerNorm, affine over one and two axes, plain over two (float64)', async () => {
    await gradcheck([{ shape: [2, 3, 5] }], (x) => layerNorm(x, { normalizedShape: 5 }));
    await gradcheck([{ shape: [2, 3, 4] }], (x) => layerNorm(x, { normalizedShape: [3, 4], eps: 1e-3 }));
    await gradcheck([{ shape: [2, 3, 4] }], (x) => layerNorm(x, { normalizedShape: [3, 4], elementwiseAffine: false }));
  });
  test('instanceNorm3d (with affine) and batchNorm1dBatchStats (float64)', async () => {
    await gradcheck([{ shape: [2, 3, 3, 2, 2] }], (x) => instanceNorm3d(x, { affine: true }));
    await gradcheck([{ shape: [6, 4] }], (x) => batchNorm1dBatchStats(x));
    await gradcheck([{ shape: [3, 2, 4] }], (x) => batchNorm1dBatchStats(x));
  });
  test('dropout and dropPath with fed masks (float64)', async () => {
    const rowMask = { shape: [2, 1], values: [0, 1], constant: true };
    await gradcheck([{ shape: [2, 5] }, rowMask], (x, m) => dropout(x, m, 0.2));
    await gradcheck([{ shape: [2, 3, 2] }, { shape: [2, 1, 1], values: [1, 0], constant: true }], (x, m) => dropPath(x, m, 0.5));
  });
  // ONNX Runtime's CPU provider has no float64 Conv, ConvTranspose or Erf. In float32 with eps 1e-2 on O(1) values:
  // convolutions are linear in each operand, so the central difference is exact up to the loss's rounding
  // (~1e-7 relative of a loss of O(10), over a step of 2e-2: ~1e-4 absolute, covered by atol 1e-3); for gelu the
  // truncation error is eps^2/6 * f''' ~ 2e-5 relative. A wrong rule errs by O(1), far above rtol 2e-2.
  test('conv3d (kernel 3 pad 1; kernel 2 stride 2 without bias) and convTranspose3d (float32)', async () => {
    const float32 = { dtype: 'float32', samples: 8 } as const;
    await gradcheck([{ shape: [2, 2, 4, 4, 3] }], (x) => conv3d(x, { inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1 }), float32);
    await gradcheck([{ shape: [1, 2, 4, 4, 2] }], (x) => conv3d(x, { inChannels: 2, outChannels: 3, kernelSize: 2, stride: 2, bias: false }), float32);
    await gradcheck([{ shape: [1, 2, 3, 2, 2] }], (x) => convTranspose3d(x, { inChannels: 2, outChannels: 3, kernelSize: 2, stride: 2 }), float32);
  });
  test('gelu (float32)', async () => {
    await gradcheck([{ shape: [24] }], (x) => gelu(x), { dtype: 'float32', samples: 24 });
  });
});

describe('a small 3D conv net', () => {
  /** conv3d -> instanceNorm3d -> activation -> conv3d stride 2 -> global mean -> linear. */
  const net = (activation: (t: Tensor) => Tensor) => (x: Tensor) => {
    const g = x.graph;
    const h1 = g.scope('conv1', () => conv3d(x, { inChannels: 1, outChannels: 4, kernelSize: 3, padding: 1 }));
    const h2 = activation(instanceNorm3d(h1));
    const h3 = g.scope('conv2', () => conv3d(h2, { inChannels: 4, outChannels: 6, kernelSize: 3, stride: 2, padding: 1 }));
    return g.scope('head', () => linear(reduceMean(h3, [2, 3, 4]), { inFeatures: 6, outFeatures: 3 }));
  };
  const input = [{ shape: [2, 1, 6, 6, 6] }];
  const names = ['x0', 'conv1.weight', 'conv1.bias', 'conv2.weight', 'conv2.bias', 'head.weight', 'head.bias'];

  // All parameters (at their PyTorch initial values) and the input are checked together, in float32 as the Convs
  // require. With a smooth activation the tolerances of the conv modules hold (eps 1e-2, rtol 2e-2).
  test('whole-graph gradients match finite differences (GELU: smooth)', async () => {
    const r = await gradcheck(input, net(gelu), { dtype: 'float32', samples: 10, seed: 3, initialised: true });
    expect(r.tensors).toEqual(names);
  });
  // With LeakyReLU a perturbation of eps moves some pre-activations across the kink (the chance grows with eps)
  // while the float32 loss's rounding grows as 1/eps: eps 1e-3 balances the two, leaving ~4% worst case here
  // (measured 3.6%), so rtol is 6e-2; the GELU net above shows the rules themselves agree to 2e-2.
  test('whole-graph gradients match finite differences (LeakyReLU, as in the UNETR blocks)', async () => {
    const r = await gradcheck(input, net((t) => leakyRelu(t)), { dtype: 'float32', samples: 10, seed: 3, initialised: true, eps: 1e-3, rtol: 6e-2 });
    expect(r.tensors).toEqual(names);
  });
});
