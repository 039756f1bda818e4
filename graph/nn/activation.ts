import { Tensor } from '../core/graph';
import { add, mul } from '../ops/elementwise';
import { erf, leakyRelu as leakyReluOp } from '../ops/math';

export { relu } from '../ops/math';
export { softmax } from '../ops/softmax';

/** torch.nn.GELU() (exact, erf form): 0.5 * x * (1 + erf(x / sqrt(2))). */
export function gelu(x: Tensor): Tensor {
  return mul(mul(x, 0.5), add(erf(mul(x, Math.SQRT1_2)), 1));
}

/** torch.nn.LeakyReLU, negative slope 0.01 unless given. */
export function leakyRelu(x: Tensor, negativeSlope = 0.01): Tensor {
  return leakyReluOp(x, negativeSlope);
}
