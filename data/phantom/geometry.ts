import type { Rng } from '../../common/rng';
import { UserError } from '../../common/user-error';

export class PhantomOptionError extends UserError {}

/** Axial orientations a scanner may store (letters: the direction each voxel axis increases towards). */
export const AXIAL_ORIENTATIONS = ['RAS', 'LPS', 'LAS', 'RPS', 'LPI', 'RAI', 'LAI', 'RPI', 'PLS', 'ALS', 'PRI', 'ARS'] as const;

export type Range = readonly [number, number];

export interface GeometryOptions {
  /** Voxels along each in-plane axis. */
  readonly inPlaneSize: Range;
  /** Number of slices. */
  readonly slices: Range;
  /** In-plane voxel size, mm. */
  readonly inPlaneSpacing: Range;
  /** Slice spacing, mm (the upper end is lowered where the stack would outgrow the phantom's trunk). */
  readonly sliceSpacing: Range;
  /** Orientation codes to draw from, e.g. 'LPS'. */
  readonly orientations: readonly string[];
}

/**
 * Small scans (fast to make and to test with) whose field of view, 115 to 480 mm, holds a trunk of roughly real
 * size, so that after resampling to 1.5 mm the body fills much of VoCo's 192 x 192 region as a real CT does
 * (finer voxels at this matrix size would only hold a shrunken patient).
 */
export const DEFAULT_GEOMETRY: GeometryOptions = {
  inPlaneSize: [96, 160],
  slices: [40, 120],
  inPlaneSpacing: [1.2, 3.0],
  sliceSpacing: [1, 5],
  orientations: AXIAL_ORIENTATIONS,
};

/** The voxel grid of one scan: its size, voxel spacing and which patient direction each voxel axis runs to. */
export interface Acquisition {
  readonly shape: [number, number, number];
  readonly spacing: [number, number, number];
  readonly orientation: string;
  /** Patient axis (0 x right, 1 y anterior, 2 z superior) followed by each voxel axis, and +1 or -1 along it. */
  readonly axisOf: [number, number, number];
  readonly signOf: [number, number, number];
}

const LETTERS: Record<string, [number, number]> = { R: [0, 1], L: [0, -1], A: [1, 1], P: [1, -1], S: [2, 1], I: [2, -1] };

export function parseOrientation(code: string): { axisOf: [number, number, number]; signOf: [number, number, number] } {
  const parts = [...code.toUpperCase()].map((c) => LETTERS[c]);
  if (parts.length !== 3 || parts.some((p) => p === undefined) || new Set(parts.map((p) => p[0])).size !== 3) {
    throw new PhantomOptionError(`orientation '${code}' is not three letters naming each of R/L, A/P, S/I once`);
  }
  return {
    axisOf: parts.map((p) => p[0]) as [number, number, number],
    signOf: parts.map((p) => p[1]) as [number, number, number],
  };
}

export function validateGeometry(o: GeometryOptions): void {
  const check = (name: string, r: Range, min: number, integer: boolean): void => {
    if (!(r[0] >= min && r[1] >= r[0] && Number.isFinite(r[1])) || (integer && !(Number.isInteger(r[0]) && Number.isInteger(r[1])))) {
      throw new PhantomOptionError(`phantom ${name} range [${r.join(', ')}] must be ${integer ? 'whole numbers' : 'numbers'} >= ${min}, low to high`);
    }
  };
  check('in-plane size', o.inPlaneSize, 8, true);
  check('slice count', o.slices, 4, true);
  check('in-plane spacing', o.inPlaneSpacing, 0.05, false);
  check('slice spacing', o.sliceSpacing, 0.05, false);
  if (o.orientations.length === 0) throw new PhantomOptionError('phantom orientation list is empty');
  for (const code of o.orientations) {
    if (parseOrientation(code).axisOf.indexOf(2) === -1) throw new PhantomOptionError(`orientation '${code}' has no S/I axis`);
  }
}

/**
 * A random acquisition. `trunkLengthPerFov` is the trunk's length in mm per mm of in-plane field of view once
 * the phantom is scaled to fit the field; the slice spacing is kept small enough that the stack fits in the trunk.
 */
export function randomAcquisition(rng: Rng, o: GeometryOptions, trunkLengthPerFov: number): Acquisition {
  const uniform = (r: Range): number => r[0] + (r[1] - r[0]) * rng.uniform();
  const orientation = o.orientations[rng.int(0, o.orientations.length - 1)];
  const { axisOf, signOf } = parseOrientation(orientation);
  const inPlane = rng.int(o.inPlaneSize[0], o.inPlaneSize[1]);
  const other = rng.uniform() < 0.3 ? rng.int(o.inPlaneSize[0], o.inPlaneSize[1]) : inPlane;
  const slices = rng.int(o.slices[0], o.slices[1]);
  const pixel = Math.fround(uniform(o.inPlaneSpacing));
  const fov = Math.min(inPlane, other) * pixel;
  const maxSlice = Math.max(o.sliceSpacing[0], Math.min(o.sliceSpacing[1], (0.95 * trunkLengthPerFov * fov) / slices));
  const sliceSpacing = Math.fround(uniform([o.sliceSpacing[0], maxSlice]));
  const shape: [number, number, number] = [0, 0, 0];
  const spacing: [number, number, number] = [0, 0, 0];
  let firstInPlane = true;
  for (let a = 0; a < 3; a++) {
    if (axisOf[a] === 2) {
      shape[a] = slices;
      spacing[a] = sliceSpacing;
    } else {
      shape[a] = firstInPlane ? inPlane : other;
      spacing[a] = pixel;
      firstInPlane = false;
    }
  }
  return { shape, spacing, orientation, axisOf, signOf };
}
