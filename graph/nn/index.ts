export { linear } from './linear';
export type { LinearOptions } from './linear';
export { conv3d, convTranspose3d } from './conv';
export type { Conv3dOptions, ConvTranspose3dOptions } from './conv';
export { layerNorm, instanceNorm3d, batchNorm1dBatchStats } from './norm';
export type { LayerNormOptions, InstanceNorm3dOptions } from './norm';
export { gelu, leakyRelu, relu, softmax } from './activation';
export { dropout, dropPath } from './dropout';
export { fanInUniform, materialize, initialValues } from './init';
