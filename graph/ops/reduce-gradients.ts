import { Tensor } from '../core/graph';
import { GradientTable } from '../autodiff/rule';
import { cast, equal } from './compare';
import { div, mul } from './elementwise';
import { reduceSum } from './reduce';
import { expand, reshape } from './shape';

/** A reduction's output (or its gradient) with the reduced axes back as size-1 dimensions. */
function withKeptDims(t: Tensor, x: Tensor, axes: readonly number[], keptDims: boolean): Tensor {
  return keptDims ? t : reshape(t, x.shape.map((d, i) => (axes.includes(i) ? 1 : d)));
}

function keptDimsOf(attributes: Readonly<Record<string, { value: unknown }>>): boolean {
  return attributes.keepdims?.value !== 0;
}

export const reduceGradients: GradientTable = {
  ReduceSum: ({ inputs: [x, axesInput], grad, node }) => {
    const axes = Array.from(x!.graph.constants.get(axesInput!) as BigInt64Array, Number);
    return [expand(withKeptDims(grad, x!, axes, keptDimsOf(node.attributes)), x!.shape), null];
  },
  ReduceMean: ({ inputs: [x], grad, node }) => {
    const axes = node.attributes.axes.value as number[];
    const count = axes.reduce((n, a) => n * x!.shape[a], 1);
    return [expand(div(withKeptDims(grad, x!, axes, keptDimsOf(node.attributes)), count), x!.shape)];
  },
  ReduceMax: ({ inputs: [x], outputs: [y], grad, node }) => {
    const axes = node.attributes.axes.value as number[];
    const kept = keptDimsOf(node.attributes);
    const isMax = cast(equal(x!, withKeptDims(y, x!, axes, kept)), x!.dtype);
    return [mul(isMax, div(withKeptDims(grad, x!, axes, kept), reduceSum(isMax, axes, true)))];
  },
};
