import { Rng } from '../../common/rng';

/** A keep mask (1 kept, 0 dropped) of `count` entries, each dropped with probability `p`. */
export function keepMask(rng: Rng, count: number, p: number): Float32Array {
  const mask = new Float32Array(count);
  for (let i = 0; i < count; i++) mask[i] = rng.uniform() < p ? 0 : 1;
  return mask;
}
