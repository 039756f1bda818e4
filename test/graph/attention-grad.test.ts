import { Graph } from '../../graph/core/graph';
import { ShapeError } from '../../graph/core/shape';
import { gradients } from '../../graph/autodiff/backward';
import { BACKWARD_CHUNK_SCORES, attention, attentionGradient } from '../../graph/ops/attention';
import { gradientRules } from '../../graph/autodiff/rules';
import { add, mul } from '../../graph/ops/elementwise';
import { matmul, transposeLast2 } from '../../graph/ops/matmul';
import { reduceSum } from '../../graph/ops/reduce';
import { reshape } from '../../graph/ops/shape';
import { softmax } from '../../graph/ops/softmax';
import { Rng } from '../../common/rng';
import { cpuSession, runSession } from '../helpers/ort';
import { gradcheck } from '../helpers/gradcheck';

/**
 * How the gradient of sum(attention(...)) with chunks of `chunk` scores recomputes the probabilities: its Softmax
 * nodes (one per chunk), and the lengths of its Scans with the windows each iteration takes.
 */
function backwardChunks(shape: readonly number[], maskShape: readonly number[], chunk: number): { softmaxes: number; scans: string[] } {
  const g = new Graph();
  const [q, k, v] = ['q', 'k', 'v'].map((n) => g.input(n, 'float32', shape));
  const m = g.input('m', 'float32', maskShape);
  const y = attention(q, k, v, m);
  const before = g.nodes.length;
  gradients(reduceSum(reshape(y, [y.shape.reduce((a, b) => a * b, 1)]), [0]), [q, k, v, m], { ...gradientRules, Attention: attentionGradient(chunk) });
  const added = g.nodes.slice(before);
  const scans = added.filter((n) => n.opType === 'Scan').map((n) => `${n.outputs.at(-1)!.shape[0]} x ${n.outputs.at(-1)!.shape[1]}`);
  return { softmaxes: added.filter((n) => n.opType === 'Softmax').length, scans };
}

describe('ONNX Attention (opset 23) and its gradient', () => {
  test('the forward is Softmax(q k^T scale + mask) v, scale 1/sqrt(d) by default (CPU provider)', async () => {
    const rng = new Rng(3);
    for (const dtype of ['float32', 'float64'] as const) {
      const g = new Graph();
      const [q, k, v] = ['q', 'k', 'v'].map((n) => g.input(n, dtype, [2, 3, 6, 4]));
      const m = g.input('m', dtype, [3, 6, 6]);
      const plain = (scale: number) => matmul(softmax(add(matmul(mul(q, scale), transposeLast2(k)), m)), v);
      const outputs = [attention(q, k, v, m), plain(0.5), attention(mul(q, 0.3), k, v, m, 1), plain(0.3), attention(q, k, v, m, 0.3)];
      const session = await cpuSession({ name: 'a', inputs: [q, k, v, m], outputs: outputs.map((tensor, i) => ({ name: `o${i}`, tensor })) });
      const data = (t: typeof q) => Array.from({ length: t.shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
      const feeds = new Map([q, k, v, m].map((t) => [t, dtype === 'float32' ? Float32Array.from(data(t)) : Float64Array.from(data(t))] as const));
      const out = await runSession(session, feeds);
      const worst = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i])));
      // float32 (the models' dtype): bit for bit the unfused ops, with the scale on q.
      if (dtype === 'float32') expect(worst(out.o0, out.o1)).toBe(0);
      // ONNX Runtime 1.30's double kernel agrees with the unfused double ops to a few 1e-8 only (smoothly: the
      // float64 finite-difference checks below pass at 1e-6).
      const close = dtype === 'float32' ? 1e-6 : 1e-7;
      expect(worst(out.o0, out.o1)).toBeLessThan(close);
      expect(worst(out.o2, out.o3)).toBeLessThan(close);
      expect(worst(out.o4, out.o3)).toBeLessThan(close);
      expect(worst(out.o4, out.o1)).toBeGreaterThan(1e-3);
    }
  });

  test('q, k, v and a mask broadcast over the batch: gradients match finite differences (float64)', async () => {
    const r = await gradcheck([{ shape: [2, 3, 5, 4] }, { shape: [2, 3, 5, 4] }, { shape: [2, 3, 5, 2] }, { shape: [3, 5, 5] }], (q, k, v, m) =>
      attention(q, k, v, m),
    );
    expect(r.tensors).toHaveLength(4);
  });

  test('a full mask, a scale attribute, and no mask', async () => {
    await gradcheck([{ shape: [2, 2, 4, 3] }, { shape: [2, 2, 4, 3] }, { shape: [2, 2, 4, 3] }, { shape: [2, 2, 4, 4] }], (q, k, v, m) =>
      attention(q, k, v, m, 0.7),
    );
    await gradcheck([{ shape: [1, 2, 4, 3] }, { shape: [1, 2, 4, 3] }, { shape: [1, 2, 4, 5] }], (q, k, v) => attention(q, k, v, null));
  });

  test('the backward recomputes the probabilities in a Scan over the windows or in chunks of heads; gradients still match', async () => {
    // 5 x 3 x 4 x 4 = 240 scores, 48 a window, in chunks of 50: a Scan of five iterations of one window; 6 windows
    // in chunks of 100: three of two (the largest divisor of the windows that fits). 2 x 7: fewer windows than
    // heads, so chunks along the heads axis, up to seven, the mask cut into the same parts; one where it all fits.
    expect(backwardChunks([5, 3, 4, 2], [3, 4, 4], 50)).toEqual({ softmaxes: 0, scans: ['5 x 1'] });
    expect(backwardChunks([6, 3, 4, 2], [3, 4, 4], 100)).toEqual({ softmaxes: 0, scans: ['3 x 2'] });
    expect(backwardChunks([2, 7, 4, 2], [7, 4, 4], 50)).toEqual({ softmaxes: 5, scans: [] });
    expect(backwardChunks([2, 7, 4, 2], [7, 4, 4], 16)).toEqual({ softmaxes: 7, scans: [] });
    expect(backwardChunks([2, 3, 5, 4], [3, 5, 5], BACKWARD_CHUNK_SCORES)).toEqual({ softmaxes: 1, scans: [] });
    // Scale 1, where ONNX Runtime's double kernel was exact in a probe (with 1/sqrt(2) it is off by ~1e-8).
    const rules = (chunk: number) => ({ rules: { ...gradientRules, Attention: attentionGradient(chunk) } });
    const qkv = (shape: number[], dv = shape[3]) => [{ shape }, { shape }, { shape: [...shape.slice(0, 3), dv] }];
    // Scanned: the mask read by the body (its gradient summed in the Scan's state), scanned along, or none.
    await gradcheck([...qkv([5, 3, 4, 2], 3), { shape: [1, 3, 4, 4] }], (q, k, v, m) => attention(q, k, v, m, 1), rules(50));
    await gradcheck([...qkv([6, 3, 4, 2]), { shape: [6, 1, 4, 4] }], (q, k, v, m) => attention(q, k, v, m, 1), rules(100));
    await gradcheck(qkv([4, 2, 3, 2], 3), (q, k, v) => attention(q, k, v, null, 1), rules(40));
    // Chunks along the heads axis.
    await gradcheck([...qkv([2, 7, 4, 2]), { shape: [7, 4, 4] }], (q, k, v, m) => attention(q, k, v, m, 1), rules(50));
    await gradcheck([...qkv([2, 7, 4, 2]), { shape: [2, 1, 4, 4] }], (q, k, v, m) => attention(q, k, v, m, 1), rules(50));
  });

  test('shapes that are not 4-D self-attention with a broadcastable mask are refused', () => {
    const g = new Graph();
    const q = g.input('q', 'float32', [2, 3, 5, 4]);
    expect(() => attention(reshape(q, [6, 5, 4]), q, q, null)).toThrow(ShapeError);
    expect(() => attention(q, g.input('k', 'float32', [2, 3, 6, 4]), q, null)).toThrow(/self-attention/);
    expect(() => attention(q, q, q, g.input('m', 'float32', [2, 5, 5]))).toThrow(new ShapeError('Attention: mask [2, 5, 5] does not broadcast to the scores [2, 3, 5, 5]'));
  });
});
