import { Tensor, attr } from '../core/graph';
import { ShapeError, formatShape, normaliseAxis, size } from '../core/shape';
import { GradientTable } from '../autodiff/rule';
import { zerosLike } from './elementwise';
import { int64s } from './int64';
import { expand, reshape } from './shape';

/**
 * Takes the entries `indices` (int64, negative counting from the end) of `x` along `axis`; the output has the
 * indices' shape in place of that axis. Constant indices are range-checked here.
 */
export function gather(x: Tensor, indices: Tensor | readonly number[], axis = 0): Tensor {
  const a = normaliseAxis('Gather', axis, x.rank);
  const n = x.shape[a];
  const idx = indices instanceof Tensor ? indices : int64s(x.graph, indices, 'indices');
  if (idx.dtype !== 'int64') throw new ShapeError(`Gather: indices must be int64, got ${idx}`);
  const known = x.graph.constants.get(idx);
  const bad = known ? Array.from(known as BigInt64Array, Number).find((i) => i < -n || i >= n) : undefined;
  if (bad !== undefined) {
    throw new ShapeError(`Gather: index ${bad} out of range for axis ${a} of ${formatShape(x.shape)}`);
  }
  const shape = [...x.shape.slice(0, a), ...idx.shape, ...x.shape.slice(a + 1)];
  return x.graph.addNode('Gather', [x, idx], { axis: attr.int(a) }, [{ dtype: x.dtype, shape }])[0];
}

export const gatherGradients: GradientTable = {
  // Viewing x as [rows, n, cols] and the gathered gradient as [rows, k, cols], ScatterElements with reduction
  // 'add' (opset 16+) sums every gathered slice back onto its source; repeated indices accumulate.
  Gather: ({ node, inputs: [x, indices], grad }) => {
    const axis = node.attributes.axis.value as number;
    const rows = size(x!.shape.slice(0, axis));
    const cols = size(x!.shape.slice(axis + 1));
    const k = size(indices!.shape);
    const into = [rows, x!.shape[axis], cols];
    const updates = reshape(grad, [rows, k, cols]);
    const positions = expand(reshape(indices!, [1, k, 1]), [rows, k, cols]);
    const summed = x!.graph.addNode('ScatterElements', [reshape(zerosLike(x!), into), positions, updates], {
      axis: attr.int(1),
      reduction: attr.string('add'),
    }, [{ dtype: x!.dtype, shape: into }])[0];
    return [reshape(summed, x!.shape), null];
  },
};
