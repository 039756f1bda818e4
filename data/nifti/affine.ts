import type { NiftiHeader } from './header';

/**
 * The voxel-to-world affine (row-major 4x4) nibabel reports for a header: the sform when sform_code is set,
 * else the qform when qform_code is set, else nibabel's fallback from the voxel sizes (x flipped, centred).
 */
export function niftiAffine(header: NiftiHeader): number[] {
  if (isKnownXformCode(header.sformCode)) return sformAffine(header);
  if (isKnownXformCode(header.qformCode)) return qformAffine(header);
  return fallbackAffine(header);
}

/** nibabel's header check resets a code outside the NIfTI list (1 scanner ... 5 template) to 0, unknown. */
function isKnownXformCode(code: number): boolean {
  return code >= 1 && code <= 5;
}

function sformAffine(header: NiftiHeader): number[] {
  return [...header.srow, 0, 0, 0, 1];
}

function voxelSizes(header: NiftiHeader): [number, number, number] {
  // nibabel's header check replaces negative voxel sizes by their absolute values.
  return [Math.abs(header.pixdim[1]), Math.abs(header.pixdim[2]), Math.abs(header.pixdim[3])];
}

function qformAffine(header: NiftiHeader): number[] {
  const [b, c, d] = header.quatern;
  // nibabel's fillpositive: a tiny negative w^2 from rounding counts as 0.
  const w2 = 1 - (b * b + c * c + d * d);
  const a = w2 < 0 ? 0 : Math.sqrt(w2);
  const r = quaternionToMatrix(a, b, c, d);
  const zooms = voxelSizes(header);
  // qfac (pixdim[0]) must be -1 or 1; nibabel's header check turns any other value into 1.
  if (header.pixdim[0] === -1) zooms[2] = -zooms[2];
  const m: number[] = [];
  for (let i = 0; i < 3; i++) {
    m.push(r[i * 3] * zooms[0], r[i * 3 + 1] * zooms[1], r[i * 3 + 2] * zooms[2], header.qoffset[i]);
  }
  return [...m, 0, 0, 0, 1];
}

function quaternionToMatrix(w: number, x: number, y: number, z: number): number[] {
  const n = w * w + x * x + y * y + z * z;
  if (n < Number.EPSILON) return [1, 0, 0, 0, 1, 0, 0, 0, 1];
  const s = 2 / n;
  const [X, Y, Z] = [x * s, y * s, z * s];
  const [wX, wY, wZ] = [w * X, w * Y, w * Z];
  const [xX, xY, xZ] = [x * X, x * Y, x * Z];
  const [yY, yZ, zZ] = [y * Y, y * Z, z * Z];
  return [1 - (yY + zZ), xY - wZ, xZ + wY, xY + wZ, 1 - (xX + zZ), yZ - wX, xZ - wY, yZ + wX, 1 - (xX + yY)];
}

function fallbackAffine(header: NiftiHeader): number[] {
  const zooms = voxelSizes(header);
  zooms[0] = -zooms[0];
  const t = header.shape.map((n, i) => (-(n - 1) / 2) * zooms[i]);
  return [zooms[0], 0, 0, t[0], 0, zooms[1], 0, t[1], 0, 0, zooms[2], t[2], 0, 0, 0, 1];
}
