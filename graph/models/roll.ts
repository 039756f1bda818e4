import { Tensor } from '../core/graph';
import { concat, split } from '../ops/slice';

/** torch.roll(x, -by, axis): element i of the result is element (i + by) mod L of x. Two slices and a concat. */
export function rollBack(x: Tensor, by: number, axis: number): Tensor {
  const len = x.shape[axis];
  const s = ((by % len) + len) % len;
  if (s === 0) return x;
  const [head, tail] = split(x, [s, len - s], axis);
  return concat([tail, head], axis);
}
