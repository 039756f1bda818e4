import { Tensor } from '../core/graph';
import { ShapeError, formatShape } from '../core/shape';
import { GradientTable } from '../autodiff/rule';

export function transpose(x: Tensor, perm: readonly number[]): Tensor {
  const valid = perm.length === x.rank && [...perm].sort((p, q) => p - q).every((p, i) => p === i);
  if (!valid) throw new ShapeError(`Transpose: perm [${perm.join(', ')}] does not fit ${formatShape(x.shape)}`);
  return x.graph.addNode('Transpose', [x], { perm: { type: 'ints', value: perm } }, [
    { dtype: x.dtype, shape: perm.map((p) => x.shape[p]) },
  ])[0];
}

export const transposeGradients: GradientTable = {
  Transpose: ({ node, grad }) => {
    const perm = node.attributes.perm.value as number[];
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [transpose(grad, inverse)];
  },
};
