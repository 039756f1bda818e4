import { Tensor } from '../../core/graph';
import { matmul, transposeLast2 } from '../../ops/matmul';
import { add } from '../../ops/elementwise';
import { reduceMean } from '../../ops/reduce';
import { concat } from '../../ops/slice';
import { relu } from '../../ops/math';
import { batchNorm1dBatchStats } from '../../nn/norm';
import { linear } from '../../nn/linear';

/** Hidden and output width of VoCo's projection heads. */
export const HEAD_WIDTH = 1024;

/** Global average pooling of each [N, C, D, H, W] feature map, concatenated along channels: [N, sum C]. */
export function poolAndConcat(features: readonly Tensor[]): Tensor {
  return concat(features.map((f) => reduceMean(f, [2, 3, 4], false)), 1);
}

/** Applies head layer `layer` (1, 2, 3): a Linear from `inFeatures` to `outFeatures`. */
export type HeadLinear = (x: Tensor, layer: number, inFeatures: number, outFeatures: number) => Tensor;

/**
 * Upstream `projection_head`: Linear-BN-ReLU, Linear-BN-ReLU, Linear, where BN is BatchNorm1d without affine and
 * with batch statistics. x [N, inDim] -> [N, HEAD_WIDTH].
 */
export function projectionHead(x: Tensor, apply: HeadLinear): Tensor {
  const inDim = x.shape[1];
  const hidden1 = relu(batchNorm1dBatchStats(apply(x, 1, inDim, HEAD_WIDTH), { eps: 1e-5 }));
  const hidden2 = relu(batchNorm1dBatchStats(apply(hidden1, 2, HEAD_WIDTH, HEAD_WIDTH), { eps: 1e-5 }));
  return apply(hidden2, 3, HEAD_WIDTH, HEAD_WIDTH);
}

/** Head linears that create their parameters (`layer<i>.0.weight`, `.bias`) in the current scope. */
export const parameterLinear: HeadLinear = (x, layer, inFeatures, outFeatures) =>
  x.graph.scope(`layer${layer}`, () => x.graph.scope(0, () => linear(x, { inFeatures, outFeatures, bias: true })));

/** Head linears computed from given weights, keyed `layer<i>.0.weight` / `layer<i>.0.bias`. */
export function fixedLinear(weights: ReadonlyMap<string, Tensor>): HeadLinear {
  return (x, layer) => {
    const w = weights.get(`layer${layer}.0.weight`);
    const b = weights.get(`layer${layer}.0.bias`);
    if (!w || !b) throw new Error(`projection head: no weights for layer${layer}.0`);
    return add(matmul(x, transposeLast2(w)), b);
  };
}
