/**
 * The per-voxel weight of a window's prediction when windows are blended, as MONAI 1.3.2's
 * `compute_importance_map`: all ones (`constant`), or a separable, unnormalised Gaussian (`gaussian`), in float32.
 */
import { SlidingWindowError, Triple } from './window-plan';

export const BLEND_MODES = ['constant', 'gaussian'] as const;
export type BlendMode = (typeof BLEND_MODES)[number];

/** Weights below this are raised to it (after taking the map's own minimum if that is larger). */
const MIN_WEIGHT = 1e-3;

/**
 * A [rx, ry, rz] C-order weight map. Gaussian: w = g_x * g_y * g_z with g(t) = exp(-(t - (r - 1) / 2)^2 / (2 sigma^2)),
 * sigma = sigmaScale * r, each step rounded to float32 as PyTorch computes it; then clamped from below at
 * max(min(w), 1e-3).
 */
export function importanceMap(roi: Triple, mode: BlendMode, sigmaScale = 0.125): Float32Array {
  const [rx, ry, rz] = roi;
  const map = new Float32Array(rx * ry * rz);
  if (mode === 'constant') return map.fill(1);
  if (mode !== 'gaussian') throw new SlidingWindowError(`blending mode must be one of ${BLEND_MODES.join(', ')}, got ${String(mode)}`);
  if (!(sigmaScale > 0)) throw new SlidingWindowError(`sigma scale must be positive, got ${sigmaScale}`);
  const [gx, gy, gz] = roi.map((r) => gaussian1d(r, sigmaScale * r));
  let i = 0;
  for (let x = 0; x < rx; x++) {
    for (let y = 0; y < ry; y++) {
      const gxy = Math.fround(gx[x] * gy[y]);
      for (let z = 0; z < rz; z++) map[i++] = gxy * gz[z];
    }
  }
  let min = Infinity;
  for (const w of map) min = Math.min(min, w);
  const floor = Math.fround(Math.max(min, MIN_WEIGHT));
  for (let j = 0; j < map.length; j++) if (map[j] < floor) map[j] = floor;
  return map;
}

function gaussian1d(size: number, sigma: number): Float32Array {
  const out = new Float32Array(size);
  const denominator = -2 * sigma * sigma;
  for (let t = 0; t < size; t++) {
    const x = Math.fround(t - (size - 1) / 2);
    out[t] = Math.exp(Math.fround(Math.fround(x * x) / denominator));
  }
  return out;
}
