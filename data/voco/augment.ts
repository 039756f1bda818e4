import type { Rng } from '../../common/rng';
import type { VocoSamplingOptions } from './options';

/**
 * The random changes applied to one crop, in upstream's order: flips along x, y, z, then a rotation by
 * `rotations` x 90 degrees in the x-y plane (from x towards y, as numpy/torch rot90), then `shift` added to
 * every voxel.
 */
export interface CropAugment {
  readonly flip: readonly [boolean, boolean, boolean];
  readonly rotations: 0 | 1 | 2 | 3;
  readonly shift: number;
}

export const IDENTITY_AUGMENT: CropAugment = { flip: [false, false, false], rotations: 0, shift: 0 };

/** The options drawAugment reads (the fine-tuning sampler has the same ones, under the same names). */
export type AugmentOptions = Pick<VocoSamplingOptions, 'augment' | 'flipProb' | 'rotateProb' | 'shiftProb' | 'shiftOffset'>;

export function drawAugment(rng: Rng, o: AugmentOptions): CropAugment {
  if (!o.augment) return IDENTITY_AUGMENT;
  const flip = [0, 1, 2].map(() => rng.uniform() < o.flipProb) as unknown as [boolean, boolean, boolean];
  const rotations = (rng.uniform() < o.rotateProb ? rng.int(1, 3) : 0) as CropAugment['rotations'];
  const shift = rng.uniform() < o.shiftProb ? Math.fround(o.shiftOffset * (2 * rng.uniform() - 1)) : 0;
  return { flip, rotations, shift };
}

/**
 * A zero-padded view of a volume: voxel p of the padded grid is voxel p - before of the volume, 0 outside it.
 * This is MONAI's symmetric constant SpatialPad to `size` without making the padded copy.
 */
export interface PaddedSource {
  readonly data: Float32Array;
  readonly shape: readonly [number, number, number];
  readonly before: readonly [number, number, number];
}

/**
 * Writes the augmented `roi`^3 crop whose corner is `corner` (padded-grid voxels) into `out` starting at `at`,
 * in C order (z fastest). Rotations need a cube, which every VoCo crop is.
 */
export function extractCrop(
  src: PaddedSource,
  corner: readonly [number, number, number],
  roi: number,
  aug: CropAugment,
  out: Float32Array,
  at: number,
): void {
  const [nx, ny, nz] = src.shape;
  const last = roi - 1;
  const ox = corner[0] - src.before[0];
  const oy = corner[1] - src.before[1];
  const zIndex = new Int32Array(roi);
  for (let k = 0; k < roi; k++) {
    const z = corner[2] - src.before[2] + (aug.flip[2] ? last - k : k);
    zIndex[k] = z >= 0 && z < nz ? z : -1;
  }
  const data = src.data;
  const shift = aug.shift;
  let w = at;
  for (let i = 0; i < roi; i++) {
    for (let j = 0; j < roi; j++) {
      // Undo the rotation, then the flips: (a, b) is the output voxel's position in the unaugmented crop.
      let a: number;
      let b: number;
      switch (aug.rotations) {
        case 0: a = i; b = j; break;
        case 1: a = j; b = last - i; break;
        case 2: a = last - i; b = last - j; break;
        case 3: a = last - j; b = i; break;
      }
      const x = ox + (aug.flip[0] ? last - a : a);
      const y = oy + (aug.flip[1] ? last - b : b);
      if (x < 0 || x >= nx || y < 0 || y >= ny) {
        out.fill(shift, w, w + roi);
        w += roi;
        continue;
      }
      const row = (x * ny + y) * nz;
      for (let k = 0; k < roi; k++) {
        const z = zIndex[k];
        out[w++] = (z < 0 ? 0 : data[row + z]) + shift;
      }
    }
  }
}
