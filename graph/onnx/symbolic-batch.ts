/**
 * A symbolic batch axis for a model whose graph has static shapes: the model is built with one row in the leading
 * axis of its batch inputs, and the file takes any number of rows there. That file computes, for B rows, the
 * one-row model on each row with the results stacked along the leading axis, provided every operator that reads a
 * tensor depending on the batch inputs keeps the rows apart: each such operator is checked here against a rule
 * for its type (an operator without one, or one that would mix rows, is refused). A Reshape leaves its leading
 * size to be inferred (-1), and every tensor that depends on the batch gets a symbolic leading dimension in the
 * model's value_info.
 */
import { Node, Tensor } from '../core/graph';
import { formatShape, normaliseAxis } from '../core/shape';

export interface SymbolicBatch {
  /** Inputs whose leading axis is symbolic; the graph is built with size 1 there. */
  readonly inputs: readonly Tensor[];
  /** Its dim_param in the model (e.g. `batch`). */
  readonly dim: string;
}

export interface BatchPlan {
  readonly dim: string;
  /** The tensors that depend on the batch inputs; their static leading size is theirs per row of the batch. */
  readonly batched: ReadonlySet<Tensor>;
  /** Reshapes whose leading size is inferred at run time: the node and its new shape input. */
  readonly shapes: ReadonlyMap<Node, readonly number[]>;
}

/** A model that cannot take a symbolic batch: the node and why. */
export class SymbolicBatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SymbolicBatchError';
  }
}

type Values = (t: Tensor | null) => readonly number[];

interface RuleContext {
  readonly node: Node;
  /** Whether an input depends on the batch. */
  readonly batched: (t: Tensor | null) => boolean;
  /** The values of a constant input (shapes, axes, pads). */
  readonly values: Values;
}

/** A problem with the node under a symbolic batch, or for a Reshape its new shape input. */
type Rule = (c: RuleContext) => string | { readonly shape: readonly number[] } | null;

const axisAttribute = (node: Node, name: string, rank: number): number => normaliseAxis(node.opType, node.attributes[name].value as number, rank);

/** Only the first input may depend on the batch. */
const firstOnly = (c: RuleContext): string | null =>
  c.node.inputs.slice(1).some(c.batched) ? 'only its first input may depend on the batch' : null;

/** Batched operands fill the output's leading axis; the others broadcast along it (size 1 there, or a lower rank). */
const elementwise: Rule = ({ node, batched }) => {
  const out = node.outputs[0];
  for (const t of node.inputs) {
    if (!t || t.rank < out.rank) {
      if (t && batched(t)) return `its batched input ${t.name} ${formatShape(t.shape)} does not lead the output ${formatShape(out.shape)}`;
      continue;
    }
    if (batched(t) ? t.shape[0] !== out.shape[0] : t.shape[0] !== 1) {
      return `${t.name} ${formatShape(t.shape)} does not broadcast along the rows of ${formatShape(out.shape)}`;
    }
  }
  return null;
};

/** The operator works along one axis, given by attribute `name`, which must not be the leading one. */
const alongAxis = (name: string): Rule => (c) => {
  const x = c.node.inputs[0]!;
  return axisAttribute(c.node, name, x.rank) === 0 ? `its ${name} is the batch axis` : firstOnly(c);
};

const RULES: Readonly<Record<string, Rule>> = {
  Add: elementwise,
  Mul: elementwise,
  Erf: elementwise,
  LeakyRelu: elementwise,
  Conv: firstOnly,
  ConvTranspose: firstOnly,
  LayerNormalization: alongAxis('axis'),
  Split: alongAxis('axis'),
  Concat: (c) => {
    const a = axisAttribute(c.node, 'axis', c.node.inputs[0]!.rank);
    if (a === 0) return 'its axis is the batch axis';
    return c.node.inputs.every(c.batched) ? null : 'an input that does not depend on the batch would not be repeated per row';
  },
  Transpose: (c) => ((c.node.attributes.perm.value as number[])[0] === 0 ? null : 'it moves the batch axis'),
  Slice: (c) => {
    const [x, starts, , axes] = c.node.inputs;
    const sliced = axes ? c.values(axes).map((a) => normaliseAxis('Slice', a, x!.rank)) : c.values(starts).map((_, i) => i);
    return sliced.includes(0) ? 'it slices the batch axis' : firstOnly(c);
  },
  Pad: (c) => {
    const pads = c.values(c.node.inputs[1]);
    return pads[0] !== 0 || pads[pads.length / 2] !== 0 ? 'it pads the batch axis' : firstOnly(c);
  },
  // [rows, K] x [K, N] keeps the rows apart; a batched matrix product must not broadcast a second operand's rows.
  MatMul: (c) => {
    const [a, b] = c.node.inputs as Tensor[];
    if (c.batched(b)) return 'its second operand depends on the batch';
    return a.rank > 2 && b.rank === a.rank && b.shape[0] !== 1 ? `${b.name} ${formatShape(b.shape)} does not broadcast along the rows` : null;
  },
  // q, k and v [B, heads, n, d] share the rows; the mask broadcasts along them.
  Attention: (c) => {
    const [q, k, v, mask] = c.node.inputs;
    if (![q, k, v].every(c.batched) || k!.shape[0] !== q!.shape[0] || v!.shape[0] !== q!.shape[0]) return 'q, k and v must all carry the rows';
    if (mask && (c.batched(mask) || (mask.rank === 4 && mask.shape[0] !== 1))) return 'its mask must broadcast along the rows';
    return null;
  },
  Reshape: (c) => {
    const target = c.values(c.node.inputs[1]);
    if (target.slice(1).some((d) => d <= 0)) return `its shape [${target.join(', ')}] leaves an axis after the first unresolved`;
    return { shape: [-1, ...target.slice(1)] };
  },
};

/**
 * The plan of a symbolic batch over `nodes` (in topological order), whose constant inputs `values` reads. Throws a
 * SymbolicBatchError naming the node when one would mix or drop the rows, or has no rule here.
 */
export function planSymbolicBatch(nodes: readonly Node[], batch: SymbolicBatch, values: Values): BatchPlan {
  for (const t of batch.inputs) {
    if (t.rank === 0 || t.shape[0] !== 1) {
      throw new SymbolicBatchError(`${t.name} ${formatShape(t.shape)}: a symbolic batch needs the model built with one row`);
    }
  }
  const batched = new Set<Tensor>(batch.inputs);
  const shapes = new Map<Node, readonly number[]>();
  const isBatched = (t: Tensor | null) => t !== null && batched.has(t);
  for (const node of nodes) {
    if (!node.inputs.some(isBatched)) continue;
    const rule = RULES[node.opType];
    const result = rule ? rule({ node, batched: isBatched, values }) : 'it has no symbolic-batch rule';
    if (typeof result === 'string') {
      const inputs = node.inputs.map((t) => (t ? formatShape(t.shape) : '-')).join(', ');
      throw new SymbolicBatchError(`${node.name} (${node.opType} of ${inputs}): cannot take a symbolic batch: ${result}`);
    }
    if (result) shapes.set(node, result.shape);
    for (const t of node.outputs) {
      if (t.rank === 0) throw new SymbolicBatchError(`${node.name} (${node.opType}): its output ${t.name} is a scalar, so the rows are gone`);
      batched.add(t);
    }
  }
  return { dim: batch.dim, batched, shapes };
}

/** The leading dimension of a tensor under the plan: the symbol for one row per batch row, else unnamed. */
export function batchedLeadingDim(plan: BatchPlan, t: Tensor): { dimParam?: string } | undefined {
  if (!plan.batched.has(t)) return undefined;
  return t.shape[0] === 1 ? { dimParam: plan.dim } : {};
}
