import { Tensor } from '../../core/graph';
import { ShapeError, formatShape } from '../../core/shape';
import { concat } from '../../ops/slice';
import { conv3d, convTranspose3d } from '../../nn/conv';
import { unetResBlock } from '../unetr-blocks';

export interface UpBlockChannels {
  readonly inChannels: number;
  readonly outChannels: number;
}

/**
 * MONAI's `UnetrUpBlock(upsample_kernel_size=2, res_block=True, norm_name="instance")` in the current scope:
 * `transp_conv` (ConvTranspose3d k2 s2, no bias) on x [N, Cin, d, d, d], concatenated with skip [N, Cout, 2d, 2d, 2d]
 * (upsampled first), then the UnetResBlock `conv_block` from 2 Cout to Cout channels.
 */
export function unetrUpBlock(x: Tensor, skip: Tensor, { inChannels, outChannels }: UpBlockChannels): Tensor {
  const g = x.graph;
  const up = g.scope('transp_conv', () =>
    g.scope('conv', () => convTranspose3d(x, { inChannels, outChannels, kernelSize: 2, stride: 2, padding: 0, bias: false })),
  );
  if (skip.rank !== 5 || formatShape(skip.shape) !== formatShape(up.shape)) {
    throw new ShapeError(`unetrUpBlock ${g.scopedName('')}: skip ${formatShape(skip.shape)} does not match the upsampled ${formatShape(up.shape)}`);
  }
  return g.scope('conv_block', () => unetResBlock(concat([up, skip], 1), { inChannels: 2 * outChannels, outChannels }));
}

/** MONAI's `UnetOutBlock` in the current scope: a 1x1x1 Conv3d with bias, named `conv.conv`. */
export function unetOutBlock(x: Tensor, { inChannels, outChannels }: UpBlockChannels): Tensor {
  const g = x.graph;
  return g.scope('conv', () => g.scope('conv', () => conv3d(x, { inChannels, outChannels, kernelSize: 1, bias: true })));
}
