/**
 * Forward against backward time of convolution and normalisation layers on ONNX Runtime's CPU provider: the
 * gradient formulations graph/ops/conv.ts and graph/nn/norm.ts chose against the ones they rejected, and a
 * small 3D conv net's training step (forward + every parameter gradient) against its forward alone.
 * Run: npx tsx bench/graph-ops.bench.ts [threads=2] [reps=5] [batch=2] [side=32] [channels=12] [only=conv|patch|strided|norm|net]
 */
import * as ort from 'onnxruntime-node';
import { Rng } from '../common/rng';
import { Graph, Tensor } from '../graph/core/graph';
import { size } from '../graph/core/shape';
import { gradients } from '../graph/autodiff/backward';
import { buildModel, encodeModel } from '../graph/onnx/model';
import { conv, convTranspose } from '../graph/ops/conv';
import { mul } from '../graph/ops/elementwise';
import { matmul } from '../graph/ops/matmul';
import { layerNormalization, normalizeOverAxes, unitScale } from '../graph/ops/norm';
import { reduceMean, reduceSum } from '../graph/ops/reduce';
import { reshape } from '../graph/ops/shape';
import { concat, pad, slice } from '../graph/ops/slice';
import { transpose } from '../graph/ops/transpose';
import { conv3d, instanceNorm3d, leakyRelu, linear } from '../graph/nn';

const [threads, reps, batch, side, channels] = [2, 5, 2, 32, 12].map((d, i) => Number(process.argv[2 + i] ?? d));
const only = process.argv[7];

interface Case {
  readonly label: string;
  readonly outputs: readonly Tensor[];
}

async function session(g: Graph, outputs: readonly Tensor[]): Promise<ort.InferenceSession> {
  const model = buildModel({ name: 'bench', inputs: g.inputs, outputs: outputs.map((t, i) => ({ name: `out${i}`, tensor: t })) });
  return ort.InferenceSession.create(encodeModel(model), {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
  });
}

/**
 * Runs the cases round-robin, `reps` rounds after a warm-up, and prints each one's best time: on a shared machine
 * contention only adds time, and interleaving spreads it over all cases alike.
 */
async function report(title: string, g: Graph, cases: readonly Case[]): Promise<void> {
  const rng = new Rng(1);
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of g.inputs) feeds[t.name] = new ort.Tensor('float32', Float32Array.from({ length: size(t.shape) }, () => rng.normal()), [...t.shape]);
  const sessions = await Promise.all(cases.map((c) => session(g, c.outputs)));
  const best = cases.map(() => Infinity);
  for (let round = 0; round <= reps; round++) {
    for (const [i, s] of sessions.entries()) {
      const start = process.hrtime.bigint();
      await s.run(feeds);
      if (round > 0) best[i] = Math.min(best[i], Number(process.hrtime.bigint() - start) / 1e9);
    }
  }
  await Promise.all(sessions.map((s) => s.release()));
  console.log(`\n${title}, ${threads} threads`);
  cases.forEach((c, i) => console.log(`  ${c.label.padEnd(60)} ${best[i].toFixed(3)} s`));
}

/** sum(y * gy): its gradients are the rules applied to the fed gy, without the forward pass. */
const loss = (y: Tensor, gy: Tensor): Tensor => reduceSum(reshape(mul(y, gy), [-1]), [0]);
const swap = (t: Tensor): Tensor => transpose(t, [1, 0, 2, 3, 4]);
const cube = (s: number): string => `${s}^3`;

/** Rejected at stride 1: the weight gradient as a Conv of the batch/channel-swapped input with gy as the kernel. */
function swappedWeightGradient(x: Tensor, gy: Tensor, pads: readonly number[]): Tensor {
  return swap(conv(swap(x), swap(gy), null, { pads }));
}

/** Rejected: x [N, C, 2a, 2b, 2c] as rows of 2x2x2 patches [N*a*b*c, C*8] (a kernel-2 stride-2 conv is a MatMul). */
function patches(x: Tensor): Tensor {
  const [n, c, d, h, w] = x.shape;
  const split = reshape(x, [n, c, d / 2, 2, h / 2, 2, w / 2, 2]);
  return reshape(transpose(split, [0, 2, 4, 6, 1, 3, 5, 7]), [(n * d * h * w) / 8, c * 8]);
}

/** Rejected: the per-tap MatMuls against gy transposed once to [N*P, Cout] (a transpose with a short inner axis). */
function weightGradientGyRows(x: Tensor, gy: Tensor): Tensor {
  const [n, c, ...spatial] = x.shape;
  const cout = gy.shape[1];
  const positions = size(spatial);
  const padded = pad(swap(x), [0, 0, 1, 1, 1, 0, 0, 1, 1, 1]);
  const gyRows = reshape(transpose(gy, [0, 2, 3, 4, 1]), [n * positions, cout]);
  const taps = [0, 1, 2].flatMap((a) => [0, 1, 2].flatMap((b) => [0, 1, 2].map((d) => [a, b, d])));
  const perTap = taps.map((t) => {
    const read = slice(padded, { starts: t, ends: t.map((o, i) => o + spatial[i]), axes: [2, 3, 4] });
    return reshape(matmul(reshape(read, [c, n * positions]), gyRows), [1, c * cout]);
  });
  return transpose(reshape(concat(perTap, 0), [3, 3, 3, c, cout]), [4, 3, 0, 1, 2]);
}

/** A 3x3x3 pad-1 conv layer as in the UNETR encoder blocks. */
async function encoderConv(n: number, c: number, s: number): Promise<void> {
  const g = new Graph();
  const x = g.input('x', 'float32', [n, c, s, s, s]);
  const w = g.input('w', 'float32', [c, c, 3, 3, 3]);
  const gy = g.input('gy', 'float32', [n, c, s, s, s]);
  const pads = [1, 1, 1, 1, 1, 1];
  const y = conv(x, w, null, { pads });
  const grads = gradients(loss(y, gy), [x, w]);
  await report(`Conv 3x3x3 pad 1, [${n}, ${c}, ${cube(s)}] -> [${n}, ${c}, ${cube(s)}]`, g, [
    { label: 'forward Conv', outputs: [y] },
    { label: 'input gradient, chosen: Conv with flipped swapped kernel', outputs: [grads.get(x)!] },
    { label: 'input gradient, rejected: ConvTranspose', outputs: [convTranspose(gy, w, null, { pads })] },
    { label: 'weight gradient, chosen: one MatMul per tap (over slabs of a long first axis)', outputs: [grads.get(w)!] },
    { label: 'weight gradient, rejected: per tap of whole tensors, gy as [N*P, Cout]', outputs: [weightGradientGyRows(x, gy)] },
    { label: 'weight gradient, rejected: Conv over batch/channel-swapped', outputs: [swappedWeightGradient(x, gy, pads)] },
    { label: 'forward and both gradients', outputs: [y, grads.get(x)!, grads.get(w)!] },
  ]);
}

/** The kernel-2 stride-2 patch embedding of SwinViT (one input channel). */
async function patchEmbedding(n: number, cout: number, s: number): Promise<void> {
  const g = new Graph();
  const x = g.input('x', 'float32', [n, 1, s, s, s]);
  const w = g.input('w', 'float32', [cout, 1, 2, 2, 2]);
  const gy = g.input('gy', 'float32', [n, cout, s / 2, s / 2, s / 2]);
  const y = conv(x, w, null, { strides: [2, 2, 2] });
  const grads = gradients(loss(y, gy), [x, w]);
  const gyRows = reshape(transpose(gy, [0, 2, 3, 4, 1]), [-1, cout]);
  const dxPatches = matmul(gyRows, reshape(w, [cout, 8]));
  const dxByMatMul = reshape(transpose(reshape(dxPatches, [n, s / 2, s / 2, s / 2, 1, 2, 2, 2]), [0, 4, 1, 5, 2, 6, 3, 7]), x.shape);
  await report(`Conv 2x2x2 stride 2, [${n}, 1, ${cube(s)}] -> [${n}, ${cout}, ${cube(s / 2)}]`, g, [
    { label: 'forward Conv', outputs: [y] },
    { label: 'input gradient, chosen: ConvTranspose', outputs: [grads.get(x)!] },
    { label: 'input gradient, rejected: MatMul over patches', outputs: [dxByMatMul] },
    { label: 'weight gradient, chosen: Conv over batch/channel-swapped', outputs: [grads.get(w)!] },
    { label: 'weight gradient, rejected: MatMul over patches', outputs: [matmul(reshape(swap(gy), [cout, -1]), patches(x))] },
  ]);
}

/** An overlapping strided conv (kernel 3, stride 2, pad 1), which the VoCo encoders do not use. */
async function stridedConv(n: number, c: number, s: number): Promise<void> {
  const g = new Graph();
  const x = g.input('x', 'float32', [n, c, s, s, s]);
  const w = g.input('w', 'float32', [c, c, 3, 3, 3]);
  const gy = g.input('gy', 'float32', [n, c, s / 2, s / 2, s / 2]);
  const y = conv(x, w, null, { strides: [2, 2, 2], pads: [1, 1, 1, 1, 1, 1] });
  const grads = gradients(loss(y, gy), [x, w]);
  await report(`Conv 3x3x3 stride 2 pad 1, [${n}, ${c}, ${cube(s)}]`, g, [
    { label: 'forward Conv', outputs: [y] },
    { label: 'input gradient: ConvTranspose', outputs: [grads.get(x)!] },
    { label: 'weight gradient: Conv over batch/channel-swapped', outputs: [grads.get(w)!] },
  ]);
}

/** InstanceNorm as LayerNormalization over the spatial axes, as a ReduceMean composition, as InstanceNormalization. */
async function instanceNorm(n: number, c: number, s: number): Promise<void> {
  const g = new Graph();
  const x = g.input('x', 'float32', [n, c, s, s, s]);
  const gy = g.input('gy', 'float32', x.shape);
  const ln = layerNormalization(x, unitScale(x, [s, s, s]), null, { axis: 2 });
  const composed = normalizeOverAxes(x, [2, 3, 4], 1e-5);
  const ones = g.constant(new Float32Array(c).fill(1), 'float32', [c], 'ones');
  const zeros = g.constant(new Float32Array(c), 'float32', [c], 'zeros');
  const op = g.addNode('InstanceNormalization', [x, ones, zeros], { epsilon: { type: 'float', value: 1e-5 } }, [{ dtype: 'float32', shape: x.shape }])[0];
  await report(`InstanceNorm over [${n}, ${c}, ${cube(s)}]`, g, [
    { label: 'forward, chosen: LayerNormalization from axis 2', outputs: [ln] },
    { label: 'forward, rejected: ReduceMean/Sub/Mul/Sqrt composition', outputs: [composed] },
    { label: 'forward, rejected: InstanceNormalization (no rule)', outputs: [op] },
    { label: 'input gradient, chosen: LayerNormalization rule', outputs: [gradients(loss(ln, gy), [x]).get(x)!] },
    { label: 'input gradient, rejected: autodiff of the composition', outputs: [gradients(loss(composed, gy), [x]).get(x)!] },
  ]);
}

/** conv3d -> instanceNorm3d -> leakyRelu -> conv3d stride 2 -> global mean -> linear. */
async function convNet(n: number, c: number, s: number): Promise<void> {
  const g = new Graph();
  const x = g.input('x', 'float32', [n, 1, s, s, s]);
  const h1 = g.scope('conv1', () => conv3d(x, { inChannels: 1, outChannels: c, kernelSize: 3, padding: 1 }));
  const h2 = g.scope('conv2', () => conv3d(leakyRelu(instanceNorm3d(h1)), { inChannels: c, outChannels: c, kernelSize: 3, padding: 1 }));
  const h3 = g.scope('conv3', () => conv3d(leakyRelu(instanceNorm3d(h2)), { inChannels: c, outChannels: 2 * c, kernelSize: 2, stride: 2 }));
  const y = g.scope('head', () => linear(reduceMean(h3, [2, 3, 4]), { inFeatures: 2 * c, outFeatures: 8 }));
  const l = reduceSum(reshape(mul(y, y), [-1]), [0]);
  const params = g.parameters.map((p) => p.tensor);
  g.inputs.push(...params);
  const grads = gradients(l, params);
  await report(`Conv net (3 convs, 2 instance norms, head) on [${n}, 1, ${cube(s)}]`, g, [
    { label: 'forward (loss)', outputs: [l] },
    { label: 'training step: loss and every parameter gradient', outputs: [l, ...params.map((p) => grads.get(p)!)] },
  ]);
}

async function main(): Promise<void> {
  const runs: Record<string, () => Promise<void>> = {
    conv: () => encoderConv(batch, channels, side),
    patch: () => patchEmbedding(batch, channels, 2 * side),
    strided: () => stridedConv(batch, channels, side),
    norm: () => instanceNorm(batch, channels, side),
    net: () => convNet(batch, channels, side),
  };
  for (const [name, run] of Object.entries(runs)) if (!only || only === name) await run();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
