import type { Rng } from '../../common/rng';

/**
 * Turns `texture` (a unit smooth field) in place into the image: per voxel the tissue's mean plus its texture
 * amplitude times the field, plus Gaussian noise of standard deviation `sigma` (Box-Muller, two per draw),
 * clamped to `range` and rounded to whole numbers when `round`.
 */
export function synthesize(
  texture: Float32Array,
  labels: Uint8Array,
  mean: Float32Array,
  amplitude: Float32Array,
  sigma: number,
  range: readonly [number, number],
  round: boolean,
  rng: Rng,
): void {
  const n = texture.length;
  const [lo, hi] = range;
  let spare = 0;
  for (let i = 0; i < n; i++) {
    let noise: number;
    if (i % 2 === 0) {
      const r = sigma * Math.sqrt(-2 * Math.log(1 - rng.uniform()));
      const t = 2 * Math.PI * rng.uniform();
      noise = r * Math.cos(t);
      spare = r * Math.sin(t);
    } else {
      noise = spare;
    }
    const l = labels[i];
    let v = mean[l] + amplitude[l] * texture[i] + noise;
    v = v < lo ? lo : v > hi ? hi : v;
    texture[i] = round ? Math.round(v) + 0 : v; // + 0 turns -0 into 0, as an integer file stores it
  }
}

/**
 * A smooth random field of unit-variance lattice values, `cell[a]` voxels apart along axis a, interpolated
 * trilinearly to every voxel of `shape` (C order, last axis fastest).
 */
export function smoothField(shape: readonly [number, number, number], cell: readonly [number, number, number], rng: Rng): Float32Array {
  const axes = [0, 1, 2].map((a) => latticeAxis(shape[a], Math.max(cell[a], 1)));
  const [g0, g1, g2] = axes.map((ax) => ax.points);
  const lattice = new Float32Array(g0 * g1 * g2);
  for (let i = 0; i < lattice.length; i++) lattice[i] = rng.normal();
  const out = new Float32Array(shape[0] * shape[1] * shape[2]);
  const [x, y, z] = axes;
  let at = 0;
  for (let i = 0; i < shape[0]; i++) {
    const xi = x.index[i];
    const xf = x.frac[i];
    for (let j = 0; j < shape[1]; j++) {
      const yi = y.index[j];
      const yf = y.frac[j];
      const b00 = (xi * g1 + yi) * g2;
      const b01 = b00 + g2;
      const b10 = b00 + g1 * g2;
      const b11 = b10 + g2;
      for (let k = 0; k < shape[2]; k++) {
        const zi = z.index[k];
        const zf = z.frac[k];
        const c00 = lattice[b00 + zi] + zf * (lattice[b00 + zi + 1] - lattice[b00 + zi]);
        const c01 = lattice[b01 + zi] + zf * (lattice[b01 + zi + 1] - lattice[b01 + zi]);
        const c10 = lattice[b10 + zi] + zf * (lattice[b10 + zi + 1] - lattice[b10 + zi]);
        const c11 = lattice[b11 + zi] + zf * (lattice[b11 + zi + 1] - lattice[b11 + zi]);
        const c0 = c00 + yf * (c01 - c00);
        const c1 = c10 + yf * (c11 - c10);
        out[at++] = c0 + xf * (c1 - c0);
      }
    }
  }
  return out;
}

function latticeAxis(n: number, cell: number): { points: number; index: Int32Array; frac: Float32Array } {
  const index = new Int32Array(n);
  const frac = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const p = i / cell;
    index[i] = Math.floor(p);
    frac[i] = p - index[i];
  }
  return { points: Math.floor((n - 1) / cell) + 2, index, frac };
}
