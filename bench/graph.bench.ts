/**
 * Training step (training graph + optimizer graph, through runtime/session/trainer) against the forward alone, for a small
 * 3D conv net and a small transformer block, on the same machine and execution provider.
 * Times are the best of `reps` runs after a warm-up (the least disturbed by other processes on a shared machine).
 * Run: npx tsx bench/graph.bench.ts [threads=1] [reps=10] [provider=cpu]
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { Rng } from '../common/rng';
import { Graph, Tensor } from '../graph/core/graph';
import { size } from '../graph/core/shape';
import { conv3d, gelu, layerNorm, leakyRelu, linear, instanceNorm3d, softmax } from '../graph/nn';
import { writeArtifacts } from '../graph/onnx/artifacts';
import { add, div, mul, sub } from '../graph/ops/elementwise';
import { matmul, transposeLast2 } from '../graph/ops/matmul';
import { reduceMean } from '../graph/ops/reduce';
import { reshape } from '../graph/ops/shape';
import { split } from '../graph/ops/slice';
import { transpose } from '../graph/ops/transpose';
import { ExecutionProvider } from '../runtime/session/providers';
import { BatchFeeds, Trainer } from '../runtime/session/trainer';

const threads = Number(process.argv[2] ?? 1);
const reps = Number(process.argv[3] ?? 10);
const provider = (process.argv[4] ?? 'cpu') as ExecutionProvider;

interface Net {
  readonly label: string;
  readonly graph: Graph;
  readonly output: Tensor;
  readonly loss: Tensor;
}

function meanSquaredError(output: Tensor, target: Tensor): Tensor {
  const e = sub(output, target);
  return reduceMean(mul(e, e), output.shape.map((_, i) => i));
}

/** Two stages of conv3d-instance norm-LeakyReLU as in a UNet encoder, 1 -> 16 -> 32 channels, 32^3 crops. */
function convNet(): Net {
  const g = new Graph();
  const x = g.input('image', 'float32', [2, 1, 32, 32, 32]);
  const block = (t: Tensor, name: string, inChannels: number, outChannels: number, stride: number) =>
    g.scope(name, () => {
      const c = g.scope('conv', () => conv3d(t, { inChannels, outChannels, kernelSize: 3, padding: 1, stride }));
      return leakyRelu(g.scope('norm', () => instanceNorm3d(c, { affine: true })));
    });
  let h = block(x, 'conv1', 1, 16, 1);
  h = block(h, 'conv2', 16, 16, 1);
  h = block(h, 'down', 16, 32, 2);
  h = block(h, 'conv3', 32, 32, 1);
  const target = g.input('target', 'float32', h.shape);
  return { label: '3D conv net [2,1,32^3] -> [2,32,16^3], 4 conv3d+IN+LeakyReLU', graph: g, output: h, loss: meanSquaredError(h, target) };
}

/** A pre-norm transformer block: LayerNorm, qkv Linear, softmax attention, proj, LayerNorm, GELU MLP (x4). */
function transformerBlock(batch: number, tokens: number, dim: number, heads: number): Net {
  const g = new Graph();
  const headDim = dim / heads;
  const x = g.input('tokens', 'float32', [batch, tokens, dim]);
  const attention = g.scope('attn', () => {
    const qkv = g.scope('qkv', () => linear(g.scope('norm1', () => layerNorm(x, { normalizedShape: dim })), { inFeatures: dim, outFeatures: 3 * dim }));
    const qkvHeads = transpose(reshape(qkv, [batch, tokens, 3, heads, headDim]), [2, 0, 3, 1, 4]);
    const [q, k, v] = split(qkvHeads, [1, 1, 1], 0).map((t) => reshape(t, [batch, heads, tokens, headDim]));
    const scores = div(matmul(q, transposeLast2(k)), Math.sqrt(headDim));
    const mixed = matmul(softmax(scores, -1), v);
    const merged = reshape(transpose(mixed, [0, 2, 1, 3]), [batch, tokens, dim]);
    return g.scope('proj', () => linear(merged, { inFeatures: dim, outFeatures: dim }));
  });
  const h = add(x, attention);
  const mlp = g.scope('mlp', () => {
    const n = g.scope('norm2', () => layerNorm(h, { normalizedShape: dim }));
    const hidden = gelu(g.scope('fc1', () => linear(n, { inFeatures: dim, outFeatures: 4 * dim })));
    return g.scope('fc2', () => linear(hidden, { inFeatures: 4 * dim, outFeatures: dim }));
  });
  const y = add(h, mlp);
  const target = g.input('target', 'float32', y.shape);
  return { label: `transformer block [${batch},${tokens},${dim}], ${heads} heads, MLP x4`, graph: g, output: y, loss: meanSquaredError(y, target) };
}

function randomBatch(graph: Graph, rng: Rng): BatchFeeds {
  return Object.fromEntries(graph.inputs.map((t) => [t.name, Float32Array.from({ length: size(t.shape) }, () => rng.normal())]));
}

/** Best wall time in ms of `reps` runs after one warm-up. */
async function best(run: () => Promise<unknown>): Promise<number> {
  await run();
  let fastest = Infinity;
  for (let i = 0; i < reps; i++) {
    const start = process.hrtime.bigint();
    await run();
    fastest = Math.min(fastest, Number(process.hrtime.bigint() - start) / 1e6);
  }
  return fastest;
}

async function measure(net: Net): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-bench-'));
  const inputs = net.graph.inputs.filter((t) => t.name !== 'target');
  writeArtifacts(dir, { graph: net.graph, loss: net.loss, optimizer: { kind: 'adamw', amsgrad: true }, forward: { forward: { inputs, outputs: { output: net.output } } } });
  const trainer = await Trainer.load(dir, { provider, threads });
  const batch = randomBatch(net.graph, new Rng(1));
  const forward = await best(() => trainer.forward('forward', batch));
  const evaluation = await best(() => trainer.evaluate(batch));
  const gradients = await best(() => trainer.computeGradients(batch));
  const step = await best(() => trainer.step(batch, { lr: 1e-4 }));
  await trainer.release();
  fs.rmSync(dir, { recursive: true, force: true });
  const params = net.graph.parameters.reduce((n, p) => n + size(p.tensor.shape), 0);
  const ms = (v: number) => v.toFixed(1);
  return `| ${net.label} | ${params} | ${ms(forward)} | ${ms(evaluation)} | ${ms(gradients)} | ${ms(step)} | ${(step / forward).toFixed(2)}x |`;
}

async function main(): Promise<void> {
  ort.env.logLevel = 'error';
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`${new Date().toISOString().slice(0, 10)}, ${cpu} (${os.cpus().length} cores), Node ${process.version}, onnxruntime-node ${ort.env.versions.common}, provider ${provider}, ${threads} intra-op threads, best of ${reps}, load average ${os.loadavg()[0].toFixed(1)}`);
  console.log('| graph | parameters | forward ms | eval (loss) ms | training graph ms | training step ms | step / forward |');
  console.log('|---|---|---|---|---|---|---|');
  // [16, 343, 96]: 16 windows of 7^3 tokens, the shape of a SwinUNETR window-attention block.
  for (const net of [convNet(), transformerBlock(4, 128, 96, 4), transformerBlock(16, 343, 96, 4)]) console.log(await measure(net));
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
