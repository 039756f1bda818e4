import { Attribute, Node, Tensor, attr } from '../core/graph';
import { Shape, ShapeError, formatShape, size } from '../core/shape';
import { GradientRule, GradientTable } from '../autodiff/rule';
import { add, filled, filledLike, mul, sum } from './elementwise';
import { matmul, transposeLast2 } from './matmul';
import { reduceSum, unbroadcast } from './reduce';
import { reshape } from './shape';
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
 * Score elements ([.., n, n]) recomputed per chunk of the backward pass (16 MiB in float32). Chunks of 2^20 (the
 * three score-sized tensors of a chunk inside a 32 MiB L3 cache) made 1.8x the nodes for no measurable gain, and
 * no chunking brought the score-sized buffers back (docs/performance.md).
 */
export const BACKWARD_CHUNK_SCORES = 2 ** 22;

/** The scale Attention applies to q k^T: its attribute or 1/sqrt(head size), as a float32 (as ONNX Runtime has it). */
function attentionScale(node: Node, headSize: number): number {
  const a = node.attributes.scale;
  return Math.fround(a ? (a.value as number) : 1 / Math.sqrt(headSize));
}

/** Consecutive sizes cutting `extent` into `count` parts that differ by at most one. */
function evenSizes(extent: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => Math.floor((extent * (i + 1)) / count) - Math.floor((extent * i) / count));
}

/**
 * ds summed down to the mask's shape. Where the mask broadcasts along the leading axis only, as a product with a
 * row of ones: ONNX Runtime's CPU ReduceSum over a short leading axis runs 2-4x slower than that MatMul
 * (docs/performance.md).
 */
function maskGradient(ds: Tensor, shape: Shape): Tensor {
  const [rows, ...rest] = ds.shape;
  const leadingOnly = shape.length === 4 && shape[0] === 1 && rows > 1 && rest.every((d, i) => d === shape[i + 1]);
  if (!leadingOnly) return unbroadcast(ds, shape);
  return reshape(matmul(filled(ds.graph, ds.dtype, [1, rows], 1), reshape(ds, [rows, size(rest)])), shape);
}

/** The Attention gradient rule recomputing at most `chunkScores` score elements at a time. */
export const attentionGradient = (chunkScores: number): GradientRule =>
  // Nothing of the forward pass is kept but y: the probabilities P = Softmax(q k^T s + mask) are recomputed a chunk
  // of the larger batch axis at a time. With dP = go v^T and, as in graph/ops/softmax.ts, the row sums of dP * P
  // equal those of go * y: dS = P (dP - rowsum(go y)), dq = s dS k, dk = s dS^T q, dv = P^T go, dmask = dS summed
  // over the axes the mask broadcasts along.
  ({ node, inputs: [q, k, v, maybeMask], outputs: [y], grad, needs }) => {
    const mask = maybeMask ?? null;
    const [b, heads, n, d] = q!.shape;
    const scale = attentionScale(node, d);
    const axis = b >= heads ? 0 : 1;
    const extent = q!.shape[axis];
    const count = Math.min(extent, Math.ceil((b * heads * n * n) / chunkScores));
    const sizes = evenSizes(extent, count);
    const parts = (t: Tensor) => split(t, sizes, axis);
    const mask4 = mask && mask.rank < 4 ? reshape(mask, [...new Array<number>(4 - mask.rank).fill(1), ...mask.shape]) : mask;
    const maskSplit = mask4 !== null && mask4.shape[axis] > 1;
    const [qs, ks, vs, gs, ys] = [q!, k!, v!, grad, y].map(parts);
    const masks = mask4 ? (maskSplit ? parts(mask4) : sizes.map(() => mask4)) : sizes.map(() => null);
    const dq: Tensor[] = [];
    const dk: Tensor[] = [];
    const dv: Tensor[] = [];
    const dm: Tensor[] = [];
    sizes.forEach((_, i) => {
      const scores = matmul(mul(qs[i], scale), transposeLast2(ks[i]));
      const p = softmax(masks[i] ? add(scores, masks[i]!) : scores, -1);
      dv.push(matmul(transposeLast2(p), gs[i]));
      // dP - rowsum as one product: [go, rowsum] [v, -1]^T, which spares a pass over the scores.
      const rowSums = reduceSum(mul(gs[i], ys[i]), [3], true);
      const ds = mul(p, matmul(concat([gs[i], rowSums], 3), transposeLast2(concat([vs[i], filledLike(rowSums, -1)], 3))));
      if (needs[0]) dq.push(mul(matmul(ds, ks[i]), scale));
      if (needs[1]) dk.push(mul(matmul(transposeLast2(ds), qs[i]), scale));
      if (mask4 && needs[3]) dm.push(maskGradient(ds, masks[i]!.shape));
    });
    const joined = (ts: Tensor[]) => (ts.length ? concat(ts, axis) : null);
    const maskGrad = !dm.length ? null : reshape(maskSplit ? concat(dm, axis) : sum(dm), mask!.shape);
    return [joined(dq), joined(dk), needs[2] ? joined(dv) : null, maskGrad];
  };

export const attentionGradients: GradientTable = { Attention: attentionGradient(BACKWARD_CHUNK_SCORES) };
