import { Tensor } from '../core/graph';
import { add } from '../ops/elementwise';
import { leakyRelu } from '../nn/activation';
import { conv3d } from '../nn/conv';
import { instanceNorm3d } from '../nn/norm';

export interface UnetrBasicBlockOptions {
  readonly inChannels: number;
  readonly outChannels: number;
  /** Cubic kernel of the two main convolutions; 3 in VoCo. */
  readonly kernelSize?: number;
}

const NEGATIVE_SLOPE = 0.01;
const NORM_EPS = 1e-5;

/**
 * MONAI's `UnetrBasicBlock(res_block=True, norm_name="instance", stride=1)` in the current scope: its only child
 * is the `UnetResBlock` named `layer`. x [N, Cin, D, H, W] -> [N, Cout, D, H, W].
 */
export function unetrBasicBlock(x: Tensor, options: UnetrBasicBlockOptions): Tensor {
  return x.graph.scope('layer', () => unetResBlock(x, options));
}

/**
 * MONAI's UnetResBlock: conv-norm-lrelu-conv-norm plus a residual (a 1x1x1 conv and norm where the channel count
 * changes), then lrelu. Convolutions without bias, InstanceNorm3d without affine, LeakyReLU 0.01.
 */
export function unetResBlock(x: Tensor, { inChannels, outChannels, kernelSize = 3 }: UnetrBasicBlockOptions): Tensor {
  const g = x.graph;
  const convNorm = (input: Tensor, name: string, cin: number, k: number): Tensor => {
    const y = g.scope(name, () =>
      g.scope('conv', () =>
        conv3d(input, { inChannels: cin, outChannels, kernelSize: k, stride: 1, padding: (k - 1) / 2, bias: false }),
      ),
    );
    return instanceNorm3d(y, { eps: NORM_EPS, affine: false });
  };
  const main = convNorm(leakyRelu(convNorm(x, 'conv1', inChannels, kernelSize), NEGATIVE_SLOPE), 'conv2', outChannels, kernelSize);
  const residual = inChannels === outChannels ? x : convNorm(x, 'conv3', inChannels, 1);
  return leakyRelu(add(main, residual), NEGATIVE_SLOPE);
}
