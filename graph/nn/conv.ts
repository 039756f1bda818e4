import { Tensor } from '../core/graph';
import { ShapeError, formatShape } from '../core/shape';
import { conv, convTranspose } from '../ops/conv';
import { fanInUniform } from './init';

type Triple = number | readonly [number, number, number];

export interface Conv3dOptions {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: Triple;
  readonly stride?: Triple;
  /** Zero padding on both sides of each spatial axis. */
  readonly padding?: Triple;
  readonly dilation?: Triple;
  readonly groups?: number;
  readonly bias?: boolean;
}

export interface ConvTranspose3dOptions extends Conv3dOptions {
  readonly outputPadding?: Triple;
}

const triple = (v: Triple): number[] => (typeof v === 'number' ? [v, v, v] : [...v]);

/**
 * The `weight` and `bias` of a (transposed) 3-D convolution in the current scope. The weight is
 * [out, in / groups, ...k] for Conv3d and [in, out / groups, ...k] for ConvTranspose3d; PyTorch reads fan-in off
 * weight.size(1) times the kernel volume in both cases.
 */
function convParameters(module: string, x: Tensor, options: Conv3dOptions, transposed: boolean) {
  const groups = options.groups ?? 1;
  const { inChannels, outChannels } = options;
  if (x.rank !== 5 || x.shape[1] !== inChannels) {
    throw new ShapeError(`${module} ${x.graph.scopedName('')}: input ${formatShape(x.shape)} is not [N, ${inChannels}, D, H, W]`);
  }
  if (inChannels % groups !== 0 || outChannels % groups !== 0) {
    throw new ShapeError(`${module} ${x.graph.scopedName('')}: channels ${inChannels} -> ${outChannels} do not split into ${groups} groups`);
  }
  const kernel = triple(options.kernelSize);
  const [rows, columns] = transposed ? [inChannels, outChannels / groups] : [outChannels, inChannels / groups];
  const init = fanInUniform(columns * kernel[0] * kernel[1] * kernel[2]);
  const g = x.graph;
  const padding = triple(options.padding ?? 0);
  return {
    weight: g.parameter('weight', x.dtype, [rows, columns, ...kernel], init),
    bias: options.bias ?? true ? g.parameter('bias', x.dtype, [outChannels], init) : null,
    geometry: { strides: triple(options.stride ?? 1), pads: [...padding, ...padding], dilations: triple(options.dilation ?? 1), groups },
  };
}

/** torch.nn.Conv3d: `weight` [out, in / groups, kD, kH, kW] and `bias` [out] in the current scope. */
export function conv3d(x: Tensor, options: Conv3dOptions): Tensor {
  const { weight, bias, geometry } = convParameters('conv3d', x, options, false);
  return conv(x, weight, bias, geometry);
}

/** torch.nn.ConvTranspose3d: `weight` [in, out / groups, kD, kH, kW] and `bias` [out] in the current scope. */
export function convTranspose3d(x: Tensor, options: ConvTranspose3dOptions): Tensor {
  const { weight, bias, geometry } = convParameters('convTranspose3d', x, options, true);
  return convTranspose(x, weight, bias, { ...geometry, outputPadding: triple(options.outputPadding ?? 0) });
}
