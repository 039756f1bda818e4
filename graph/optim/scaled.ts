import { Tensor } from '../core/graph';
import { add, mul } from '../ops/elementwise';

/** `a + alpha * b`, PyTorch's `a.add(b, alpha=...)`. */
export function addScaled(a: Tensor, b: Tensor, alpha: number | Tensor): Tensor {
  return add(a, mul(b, alpha));
}
