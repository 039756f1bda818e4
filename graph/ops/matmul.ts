import { Tensor, attr } from '../core/graph';
import { ShapeError, broadcastShapes, formatShape } from '../core/shape';
import { mul } from './elementwise';
import { GradientTable } from '../autodiff/rule';
import { unbroadcast } from './reduce';
import { transpose } from './transpose';

/** Batched matrix product with NumPy semantics for rank >= 2 operands. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.rank < 2 || b.rank < 2) throw new ShapeError(`MatMul: operands must have rank >= 2, got ${formatShape(a.shape)} and ${formatShape(b.shape)}`);
  const [m, k] = a.shape.slice(-2);
  const [k2, n] = b.shape.slice(-2);
  if (k !== k2) throw new ShapeError(`MatMul: inner dimensions differ in ${formatShape(a.shape)} x ${formatShape(b.shape)}`);
  const batch = broadcastShapes('MatMul', [a.shape.slice(0, -2), b.shape.slice(0, -2)]);
  return a.graph.addNode('MatMul', [a, b], {}, [{ dtype: a.dtype, shape: [...batch, m, n] }])[0];
}

/** Swaps the last two axes. */
export function transposeLast2(x: Tensor): Tensor {
  const perm = x.shape.map((_, i) => i);
  perm[x.rank - 2] = x.rank - 1;
  perm[x.rank - 1] = x.rank - 2;
  return transpose(x, perm);
}

export interface GemmOptions {
  readonly transA?: boolean;
  readonly transB?: boolean;
  readonly alpha?: number;
  readonly beta?: number;
}

/** alpha * op(a) @ op(b) + beta * c for 2-D a and b, op transposing when asked; c broadcasts to the [M, N] result. */
export function gemm(a: Tensor, b: Tensor, c: Tensor | null = null, options: GemmOptions = {}): Tensor {
  const { transA = false, transB = false, alpha = 1, beta = 1 } = options;
  const shapes = [a, b, ...(c ? [c] : [])].map((t) => formatShape(t.shape)).join(', ');
  if (a.rank !== 2 || b.rank !== 2) throw new ShapeError(`Gemm: a and b must be 2-D, got ${shapes}`);
  if (a.dtype !== b.dtype || (c && c.dtype !== a.dtype)) throw new ShapeError(`Gemm: dtypes differ in ${[a, b, c].filter(Boolean).join(', ')}`);
  const [m, k] = transA ? [a.shape[1], a.shape[0]] : a.shape;
  const [k2, n] = transB ? [b.shape[1], b.shape[0]] : b.shape;
  if (k !== k2) throw new ShapeError(`Gemm: inner dimensions differ in ${shapes} (transA=${transA}, transB=${transB})`);
  const fitsResult = (d: number, i: number): boolean => d === 1 || d === [m, n][i + 2 - c!.rank];
  if (c && (c.rank > 2 || !c.shape.every(fitsResult))) {
    throw new ShapeError(`Gemm: c of ${formatShape(c.shape)} does not broadcast to the result [${m}, ${n}] (${shapes})`);
  }
  const attributes = { transA: attr.int(transA ? 1 : 0), transB: attr.int(transB ? 1 : 0), alpha: attr.float(alpha), beta: attr.float(beta) };
  return a.graph.addNode('Gemm', c ? [a, b, c] : [a, b], attributes, [{ dtype: a.dtype, shape: [m, n] }])[0];
}

export const matmulGradients: GradientTable = {
  MatMul: ({ inputs: [a, b], grad, needs }) => [
    needs[0] ? unbroadcast(matmul(grad, transposeLast2(b!)), a!.shape) : null,
    needs[1] ? unbroadcast(matmul(transposeLast2(a!), grad), b!.shape) : null,
  ],
  // With A' = op(a), B' = op(b): dA' = alpha g B'^T and dB' = alpha A'^T g, each written as one Gemm that
  // lands directly in the layout of a or b. Attributes are float32, hence the fround.
  Gemm: ({ node, inputs: [a, b, c], grad, needs }) => {
    const transA = node.attributes.transA.value === 1;
    const transB = node.attributes.transB.value === 1;
    const alpha = Math.fround(node.attributes.alpha.value as number);
    const beta = Math.fround(node.attributes.beta.value as number);
    const gradA = () => (transA ? gemm(b!, grad, null, { transA: transB, transB: true, alpha }) : gemm(grad, b!, null, { transB: !transB, alpha }));
    const gradB = () => (transB ? gemm(grad, a!, null, { transA: true, transB: transA, alpha }) : gemm(a!, grad, null, { transA: !transA, alpha }));
    return [needs[0] ? gradA() : null, needs[1] ? gradB() : null, c && needs[2] ? unbroadcast(mul(grad, beta), c.shape) : null];
  },
};
