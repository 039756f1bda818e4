import { Attribute, Node, Tensor, attr } from '../core/graph';
import { ShapeError, formatShape, largestDivisor } from '../core/shape';
import { GradientRule, GradientTable } from '../autodiff/rule';
import { add, filledLike, mul, sum } from './elementwise';
import { matmul, transposeLast2 } from './matmul';
import { reduceSum, unbroadcast } from './reduce';
import { reshape } from './shape';
import { scan } from './scan';
import { concat, split } from './slice';
import { softmax } from './softmax';

/** The first opset with the default-domain Attention operator. */
export const ATTENTION_OPSET = 23;

/**
 * ONNX Attention (opset 23) on 4-D q, k, v [B, heads, n, d] with an additive float mask broadcastable to
 * [B, heads, n, n]: Softmax(q k^T * scale + mask) v, scale 1/sqrt(d) unless given. Self-attention, one head count
 * for q, k and v; no causal mask, softcap, cache or extra outputs.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, scale?: number): Tensor {
  const shapes = [q, k, v, ...(mask ? [mask] : [])].map((t) => formatShape(t.shape)).join(', ');
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) throw new ShapeError(`Attention: q, k and v must be 4-D [B, heads, n, d], got ${shapes}`);
  if ([k, v, mask].some((t) => t && t.dtype !== q.dtype)) throw new ShapeError(`Attention: dtypes differ in ${shapes}`);
  const [b, heads, n] = q.shape;
  if (k.shape.join() !== q.shape.join() || v.shape.slice(0, 3).join() !== [b, heads, n].join()) {
    throw new ShapeError(`Attention: k must have q's shape and v q's [B, heads, n] (self-attention), got ${shapes}`);
  }
  if (mask) {
    const scores = [b, heads, n, n];
    const fits = mask.shape.every((m, i) => m === 1 || m === scores[4 - mask.rank + i]);
    if (mask.rank > 4 || !fits) {
      throw new ShapeError(`Attention: mask ${formatShape(mask.shape)} does not broadcast to the scores [${scores.join(', ')}]`);
    }
  }
  const attributes: Record<string, Attribute> = scale === undefined ? {} : { scale: attr.float(scale) };
  return q.graph.addNode('Attention', mask ? [q, k, v, mask] : [q, k, v], attributes, [{ dtype: q.dtype, shape: [b, heads, n, v.shape[3]] }])[0];
}

/**
 * Score elements ([.., n, n]) recomputed per iteration of the backward pass (8 MiB in float32: five stage-1
 * windows of 3 heads). Without a Scan, chunk sizes from 2^20 to 2^24 measured alike (docs/performance.md).
 */
export const BACKWARD_CHUNK_SCORES = 2 ** 21;

/** The scale Attention applies to q k^T: its attribute or 1/sqrt(head size), as a float32 (as ONNX Runtime has it). */
function attentionScale(node: Node, headSize: number): number {
  const a = node.attributes.scale;
  return Math.fround(a ? (a.value as number) : 1 / Math.sqrt(headSize));
}

/** Consecutive sizes cutting `extent` into `count` parts that differ by at most one. */
function evenSizes(extent: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => Math.floor((extent * (i + 1)) / count) - Math.floor((extent * i) / count));
}

interface ChunkGradients {
  readonly dq: Tensor | null;
  readonly dk: Tensor | null;
  readonly dv: Tensor | null;
  readonly dm: Tensor | null;
}

/**
 * The gradients of one chunk of windows, recomputing its probabilities P = Softmax(q k^T s + mask). With dP = go v^T
 * and, as in graph/ops/softmax.ts, the row sums of dP * P equal to those of go * y: dS = P (dP - rowsum(go y)),
 * dq = s dS k, dk = s dS^T q, dv = P^T go, dmask = dS summed down to the mask's shape. The three products are taken
 * transposed (d x n results, as k^T dS^T, q^T dS, go^T P), which ONNX Runtime's GEMM runs faster than n x d ones.
 */
function chunkGradients(q: Tensor, k: Tensor, v: Tensor, go: Tensor, y: Tensor, mask: Tensor | null, scale: number, needs: readonly boolean[]): ChunkGradients {
  const t = transposeLast2;
  const scores = matmul(mul(q, scale), t(k));
  const p = softmax(mask ? add(scores, mask) : scores, -1);
  // dP - rowsum as one product: [go, rowsum] [v, -1]^T, which spares a pass over the scores.
  const rowSums = reduceSum(mul(go, y), [3], true);
  const ds = mul(p, matmul(concat([go, rowSums], 3), t(concat([v, filledLike(rowSums, -1)], 3))));
  return {
    dq: needs[0] ? mul(t(matmul(t(k), t(ds))), scale) : null,
    dk: needs[1] ? mul(t(matmul(t(q), ds)), scale) : null,
    dv: needs[2] ? t(matmul(t(go), p)) : null,
    dm: mask && needs[3] ? unbroadcast(ds, mask.shape) : null,
  };
}

/**
 * The gradients with one Scan over groups of `per` windows (the leading axis): each iteration's score-sized
 * tensors are reused in cache instead of a new set per chunk (docs/performance.md). A mask broadcast over the
 * windows is read by the body and its gradient summed in a loop-carried state; a mask per window is scanned along.
 */
function scannedGradients(q: Tensor, k: Tensor, v: Tensor, go: Tensor, y: Tensor, mask: Tensor | null, per: number, scale: number, needs: readonly boolean[]): ChunkGradients {
  const groups = (x: Tensor) => reshape(x, [x.shape[0] / per, per, ...x.shape.slice(1)]);
  const perWindow = mask !== null && mask.shape[0] > 1;
  const accumulate = mask !== null && !perWindow && needs[3];
  const scanned = [q, k, v, go, y, ...(perWindow ? [mask] : [])].map(groups);
  const result = scan(accumulate ? [filledLike(mask, 0)] : [], scanned, (body, states, [qs, ks, vs, gs, ys, ms]) => {
    const m = perWindow ? ms : mask && body.capture(mask);
    const g = chunkGradients(qs, ks, vs, gs, ys, m, scale, needs);
    const outputs = [g.dq, g.dk, g.dv, perWindow ? g.dm : null].filter((x): x is Tensor => x !== null);
    return { states: accumulate ? [add(states[0], g.dm!)] : [], outputs };
  });
  const stacked = [...result.outputs];
  const joined = (flag: boolean, like: Tensor) => (flag ? reshape(stacked.shift()!, like.shape) : null);
  const [dq, dk, dv] = [joined(needs[0], q), joined(needs[1], k), joined(needs[2], v)];
  return { dq, dk, dv, dm: accumulate ? result.states[0] : joined(perWindow && needs[3], mask!) };
}

/** The Attention gradient rule recomputing about `chunkScores` score elements at a time (never fewer than one window's). */
export const attentionGradient = (chunkScores: number): GradientRule =>
  // Nothing of the forward pass is kept but y: the probabilities are recomputed a chunk of the larger batch axis
  // at a time, in a Scan over the leading axis where it takes two iterations or more.
  ({ node, inputs: [q, k, v, maybeMask], outputs: [y], grad, needs }) => {
    const mask = maybeMask ?? null;
    const [b, heads, n, d] = q!.shape;
    const scale = attentionScale(node, d);
    const mask4 = mask && mask.rank < 4 ? reshape(mask, [...new Array<number>(4 - mask.rank).fill(1), ...mask.shape]) : mask;
    const back = (m: Tensor | null) => (m ? reshape(m, mask!.shape) : null);
    const per = largestDivisor(b, chunkScores / (heads * n * n));
    if (b >= heads && b / per >= 2) {
      const g = scannedGradients(q!, k!, v!, grad, y, mask4, per, scale, needs);
      return [g.dq, g.dk, g.dv, back(g.dm)];
    }
    const axis = b >= heads ? 0 : 1;
    const extent = q!.shape[axis];
    const sizes = evenSizes(extent, Math.min(extent, Math.ceil((b * heads * n * n) / chunkScores)));
    const parts = (t: Tensor) => split(t, sizes, axis);
    const maskSplit = mask4 !== null && mask4.shape[axis] > 1;
    const [qs, ks, vs, gs, ys] = [q!, k!, v!, grad, y].map(parts);
    const masks = mask4 ? (maskSplit ? parts(mask4) : sizes.map(() => mask4)) : sizes.map(() => null);
    const chunks = sizes.map((_, i) => chunkGradients(qs[i], ks[i], vs[i], gs[i], ys[i], masks[i], scale, needs));
    const joined = (ts: (Tensor | null)[]) => (ts[0] ? concat(ts as Tensor[], axis) : null);
    const dm = chunks.map((c) => c.dm);
    const maskGrad = !dm[0] ? null : maskSplit ? concat(dm as Tensor[], axis) : sum(dm as Tensor[]);
    return [joined(chunks.map((c) => c.dq)), joined(chunks.map((c) => c.dk)), joined(chunks.map((c) => c.dv)), back(maskGrad)];
  };

export const attentionGradients: GradientTable = { Attention: attentionGradient(BACKWARD_CHUNK_SCORES) };
