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
  /**
   * The body's width as a share of the in-plane field of view, which sets the pixel size (within
   * `inPlaneSpacing`); where that range cannot make the field wide enough, the trunk is shrunk to this share.
   */
  readonly bodyFill: Range;
  /** Length of the scan along the body, mm, which sets the slice spacing (within `sliceSpacing`). */
  readonly scanLength: Range;
  /** Orientation codes to draw from, e.g. 'LPS'. */
  readonly orientations: readonly string[];
}

/**
 * Abdominal scans of an adult at real size in small matrices (fast to make, small on disk): a 335 to 490 mm field
 * of view with the body 72% to 90% of its width, 200 to 300 mm long (from the lung bases past the kidneys). After
 * resampling to 1.5 mm and the foreground crop the body fills about 200-235 x 145-175 voxels and 130-200 slices,
 * as real abdominal CTs do, so the 192 x 192 x 64 VoCo region and the 96^3 fine-tuning crops lie mostly inside
 * the patient.
 */
export const DEFAULT_GEOMETRY: GeometryOptions = {
  inPlaneSize: [128, 192],
  slices: [40, 100],
  inPlaneSpacing: [1.2, 3.0],
  sliceSpacing: [1, 5],
  bodyFill: [0.72, 0.9],
  scanLength: [200, 300],
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
  check('scan length', o.scanLength, 1, false);
  if (!(o.bodyFill[0] > 0 && o.bodyFill[1] >= o.bodyFill[0] && o.bodyFill[1] <= 1)) {
    throw new PhantomOptionError(`phantom body fill range [${o.bodyFill.join(', ')}] must lie in (0, 1], low to high`);
  }
  if (o.orientations.length === 0) throw new PhantomOptionError('phantom orientation list is empty');
  for (const code of o.orientations) {
    if (parseOrientation(code).axisOf.indexOf(2) === -1) throw new PhantomOptionError(`orientation '${code}' has no S/I axis`);
  }
}

/** The trunk a scan is planned for: its width and length in mm, and the share `fill` of the field its width takes. */
export interface ScanTarget {
  readonly width: number;
  readonly length: number;
  readonly fill: number;
}

/**
 * A random acquisition planned for `target`: the pixel size makes the field of view `target.width / fill` wide
 * and the slice spacing the scan `scanLength` long, each as far as its range allows; the slice spacing is also
 * kept small enough that the stack fits in the trunk once the trunk is shrunk to fit a too narrow field.
 */
export function randomAcquisition(rng: Rng, o: GeometryOptions, target: ScanTarget): Acquisition {
  const uniform = (r: Range): number => r[0] + (r[1] - r[0]) * rng.uniform();
  const clamp = (v: number, r: Range): number => Math.min(Math.max(v, r[0]), r[1]);
  const orientation = o.orientations[rng.int(0, o.orientations.length - 1)];
  const { axisOf, signOf } = parseOrientation(orientation);
  const inPlane = rng.int(o.inPlaneSize[0], o.inPlaneSize[1]);
  const other = rng.uniform() < 0.3 ? rng.int(o.inPlaneSize[0], o.inPlaneSize[1]) : inPlane;
  const slices = rng.int(o.slices[0], o.slices[1]);
  const matrix = Math.min(inPlane, other);
  const pixel = Math.fround(clamp(target.width / target.fill / matrix, o.inPlaneSpacing));
  const scale = Math.min(1, (target.fill * matrix * pixel) / target.width);
  const maxSlice = Math.max(o.sliceSpacing[0], Math.min(o.sliceSpacing[1], (0.95 * target.length * scale) / slices));
  const sliceSpacing = Math.fround(clamp(uniform(o.scanLength) / slices, [o.sliceSpacing[0], maxSlice]));
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
