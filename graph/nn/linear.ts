import { Tensor } from '../core/graph';
import { ShapeError, formatShape } from '../core/shape';
import { add } from '../ops/elementwise';
import { matmul, transposeLast2 } from '../ops/matmul';
import { reshape } from '../ops/shape';
import { fanInUniform } from './init';

export interface LinearOptions {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly bias?: boolean;
}

/**
 * torch.nn.Linear over the last axis: `weight` [out, in] and `bias` [out] in the current scope. Leading axes are
 * flattened into one, so the weight gradient is one large MatMul rather than a batch of small ones.
 */
export function linear(x: Tensor, options: LinearOptions): Tensor {
  const { inFeatures, outFeatures } = options;
  if (x.rank < 1 || x.shape[x.rank - 1] !== inFeatures) {
    throw new ShapeError(`linear ${x.graph.scopedName('')}: input ${formatShape(x.shape)} does not end in ${inFeatures} features`);
  }
  const g = x.graph;
  const init = fanInUniform(inFeatures);
  const weight = g.parameter('weight', x.dtype, [outFeatures, inFeatures], init);
  const bias = options.bias ?? true ? g.parameter('bias', x.dtype, [outFeatures], init) : null;
  const rows = x.rank === 2 ? x : reshape(x, [-1, inFeatures]);
  const product = matmul(rows, transposeLast2(weight));
  const y = bias ? add(product, bias) : product;
  return x.rank === 2 ? y : reshape(y, [...x.shape.slice(0, -1), outFeatures]);
}
