import { Node, Tensor } from '../core/graph';
import { formatShape, sameShape } from '../core/shape';
import { onesLike, sum, zerosLike } from '../ops/elementwise';
import { GradientTable } from './rule';
import { gradientRules } from './rules';

export class AutodiffError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AutodiffError';
  }
}

/**
 * Reverse-mode differentiation: builds, in the loss's graph, d(loss)/d(t) for every tensor in `wrt`.
 * Only nodes on a path from `wrt` to `loss` get gradient nodes; `detach` cuts paths; contributions of a tensor
 * used several times are summed. A tensor of `wrt` that does not reach the loss gets zeros.
 */
export function gradients(loss: Tensor, wrt: readonly Tensor[], rules: GradientTable = gradientRules): Map<Tensor, Tensor> {
  const graph = loss.graph;
  const requiresGrad = forwardReach(graph.nodes, wrt);
  const contributions = new Map<Tensor, Tensor[]>();
  contributions.set(loss, [onesLike(loss)]);

  const total = (t: Tensor): Tensor | null => {
    const parts = contributions.get(t);
    if (!parts) return null;
    const summed = parts.length === 1 ? parts[0] : graph.scope('grad', () => sum(parts));
    contributions.set(t, [summed]);
    return summed;
  };

  for (let n = graph.nodes.length - 1; n >= 0; n--) {
    const node = graph.nodes[n];
    if (node.stopsGradient) continue;
    const needs = node.inputs.map((t) => t !== null && requiresGrad.has(t));
    if (!needs.some(Boolean)) continue;
    const grads = node.outputs.map(total);
    if (grads.every((g) => g === null)) continue;
    const rule = rules[node.opType];
    if (!rule) throw new AutodiffError(`no gradient rule for ${node.opType} (node ${node.name})`);
    const first = grads[0] ?? zerosLike(node.outputs[0]);
    const inputGrads = graph.scope('grad', () =>
      rule({ node, inputs: node.inputs, outputs: node.outputs, grad: first, grads, needs }),
    );
    node.inputs.forEach((input, i) => {
      const g = inputGrads[i];
      if (!input || !needs[i] || !g) return;
      checkGradient(node, input, g);
      const list = contributions.get(input) ?? [];
      list.push(g);
      contributions.set(input, list);
    });
  }

  const result = new Map<Tensor, Tensor>();
  for (const t of wrt) result.set(t, total(t) ?? zerosLike(t));
  return result;
}

function forwardReach(nodes: readonly Node[], wrt: readonly Tensor[]): Set<Tensor> {
  const reached = new Set<Tensor>(wrt);
  for (const node of nodes) {
    if (node.stopsGradient) continue;
    if (node.inputs.some((t) => t !== null && reached.has(t))) node.outputs.forEach((o) => reached.add(o));
  }
  return reached;
}

function checkGradient(node: Node, input: Tensor, g: Tensor): void {
  if (!sameShape(g.shape, input.shape) || g.dtype !== input.dtype) {
    throw new AutodiffError(
      `gradient rule of ${node.opType} (node ${node.name}) gave ${g.dtype}${formatShape(g.shape)} for input ` +
        `${input.name} of ${input.dtype}${formatShape(input.shape)}`,
    );
  }
}
