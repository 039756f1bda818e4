import type { Volume } from '../volume';

export interface IntensityWindow {
  readonly aMin: number;
  readonly aMax: number;
  readonly bMin: number;
  readonly bMax: number;
}

/**
 * MONAI ScaleIntensityRange with clip=True: maps [aMin, aMax] linearly to [bMin, bMax] and clips, in float32
 * arithmetic as PyTorch does on a float32 tensor.
 */
export function scaleIntensityRange(volume: Volume, { aMin, aMax, bMin, bMax }: IntensityWindow): Volume {
  if (aMax === aMin) throw new Error('scaleIntensityRange: aMin equals aMax');
  const f = Math.fround;
  const lo = f(aMin);
  const range = f(aMax - aMin);
  const scale = f(bMax - bMin);
  const offset = f(bMin);
  const src = volume.data;
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = f(f(f(f(src[i] - lo) / range) * scale) + offset);
    out[i] = v < bMin ? bMin : v > bMax ? bMax : v;
  }
  return { data: out, shape: volume.shape, affine: volume.affine };
}
