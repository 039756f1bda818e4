import { Tensor, attr } from '../core/graph';
import { normaliseAxis, sameShape, size } from '../core/shape';
import { GradientTable } from '../autodiff/rule';
import { mul, sub } from './elementwise';
import { requireFloat } from './math';
import { reduceSum } from './reduce';
import { reshape } from './shape';

/** Softmax along one axis (opset 13+ semantics: the other axes are independent rows). */
export function softmax(x: Tensor, axis = -1): Tensor {
  requireFloat('Softmax', x);
  const a = normaliseAxis('Softmax', axis, x.rank);
  return x.graph.addNode('Softmax', [x], { axis: attr.int(a) }, [{ dtype: x.dtype, shape: x.shape }])[0];
}

/**
 * In attention, o = MatMul(y, v) with y = Softmax(s) along the last axis (or a Reshape of it) is y's only use, and
 * its gradient is g = MatMul(go, Transpose(v)). Then the row sums of g * y equal those of go * o
 * (sum_j y_ij sum_d go_id v_jd = sum_d go_id o_id): a product of [.., n, d] tensors instead of two passes over the
 * [.., n, n] ones. Returns those row sums shaped [...y.shape without its last axis, 1], or null where `grad` is not
 * of that form.
 */
function attentionRowSums(y: Tensor, grad: Tensor): Tensor | null {
  const viaReshape = grad.producer?.opType === 'Reshape';
  const g = viaReshape ? grad.producer!.inputs[0]! : grad;
  const back = g.producer;
  if (back?.opType !== 'MatMul') return null;
  const [go, vt] = back.inputs;
  const v = vt?.producer?.opType === 'Transpose' ? vt.producer.inputs[0] : null;
  const perm = vt?.producer?.attributes.perm?.value as number[] | undefined;
  const swapsLast2 = perm !== undefined && perm.every((p, i) => p === (i < perm.length - 2 ? i : 2 * perm.length - 3 - i));
  if (!go || !v || !swapsLast2) return null;
  const nodes = y.graph.nodes;
  const probabilities = viaReshape
    ? nodes.find((n) => n.opType === 'Reshape' && n.inputs[0] === y && sameShape(n.outputs[0].shape, g.shape))?.outputs[0]
    : y;
  if (!probabilities || probabilities.shape[probabilities.rank - 1] !== y.shape[y.rank - 1]) return null;
  const o = nodes.find((n) => n.opType === 'MatMul' && n.inputs[0] === probabilities && n.inputs[1] === v)?.outputs[0];
  if (!o || !sameShape(o.shape, go.shape)) return null;
  return reshape(reduceSum(mul(go, o), [o.rank - 1], true), [...y.shape.slice(0, -1), 1]);
}

export const softmaxGradients: GradientTable = {
  // dx = y * (g - sum(g * y)) along the axis.
  Softmax: ({ node, outputs: [y], grad }) => {
    const axis = node.attributes.axis.value as number;
    const last = axis === y.rank - 1;
    const rowSums = (last ? attentionRowSums(y, grad) : null) ?? reduceSum(mul(grad, y), [axis], true);
    if (!last) return [mul(y, sub(grad, rowSums))];
    // Computed on [rows, n] views: ONNX Runtime gives a freed buffer to the next tensor of the same shape and keeps
    // it until that tensor is released, so a gradient shaped like the forward's [.., n, n] tensors would keep one of
    // their buffers alive from the forward pass on (see the attention in graph/models/swin.ts).
    const n = y.shape[axis];
    const rows = size(y.shape) / n;
    const flat = (t: Tensor, last: number) => reshape(t, [rows, last]);
    return [reshape(mul(flat(y, n), sub(flat(grad, n), flat(rowSums, 1))), y.shape)];
  },
};
