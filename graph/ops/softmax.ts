import { Tensor, attr } from '../core/graph';
import { normaliseAxis } from '../core/shape';
import { GradientTable } from '../autodiff/rule';
import { mul, sub } from './elementwise';
import { requireFloat } from './math';
import { reduceSum } from './reduce';

/** Softmax along one axis (opset 13+ semantics: the other axes are independent rows). */
export function softmax(x: Tensor, axis = -1): Tensor {
  requireFloat('Softmax', x);
  const a = normaliseAxis('Softmax', axis, x.rank);
  return x.graph.addNode('Softmax', [x], { axis: attr.int(a) }, [{ dtype: x.dtype, shape: x.shape }])[0];
}

export const softmaxGradients: GradientTable = {
  // dx = y * (g - sum(g * y)) along the axis.
  Softmax: ({ node, outputs: [y], grad }) => {
    const gy = mul(grad, y);
    return [sub(gy, mul(y, reduceSum(gy, [node.attributes.axis.value as number], true)))];
  },
};
