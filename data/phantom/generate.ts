import { Rng } from '../../common/rng';
import type { Volume } from '../volume';
import { randomAnatomy, type Anatomy } from './anatomy';
import { DEFAULT_GEOMETRY, PhantomOptionError, randomAcquisition, validateGeometry, type Acquisition, type GeometryOptions, type Range } from './geometry';
import { smoothField, synthesize } from './noise';
import { organLabel } from './organs';
import { labelSet, paint, type PatientGrid } from './rasterize';
import { label, TISSUES } from './tissues';

/** How the voxel values are stored on disk (what the NIfTI writer offers; int16 values are whole HU). */
export type PhantomStoredType = 'int16' | 'float32';

export interface PhantomOptions {
  readonly geometry?: Partial<GeometryOptions>;
  /** Whether the scan is contrast-enhanced (portal-venous phase); 'random': half of them. */
  readonly contrast?: boolean | 'random';
  /** Standard deviation of the image noise in HU, drawn from this range. */
  readonly noiseHu?: Range;
  /** Stored type, or 'random' (mostly int16, as scanners write, sometimes float32). */
  readonly storedType?: PhantomStoredType | 'random';
}

export interface Phantom {
  /** Hounsfield units exactly as a reader will decode them from the stored type (already quantized). */
  readonly volume: Volume;
  /** Tissue label of every voxel (index into TISSUES), same layout as `volume.data`. */
  readonly labels: Uint8Array;
  /** Organ label of every voxel (0 background, else 1 + index into ORGANS), same layout as `volume.data`. */
  readonly organs: Uint8Array;
  readonly acquisition: Acquisition;
  readonly storedType: PhantomStoredType;
  readonly contrast: boolean;
  readonly noiseHu: number;
  /** Size of the phantom relative to a real adult (it is shrunk to fit small fields of view). */
  readonly scale: number;
}

const HU_RANGE: Range = [-1024, 3071];

/**
 * A procedural abdominal CT scan of an adult, the same for the same seed and options, with its organ label map.
 * The field of view is planned for the body (with air around it; the trunk is shrunk only where the geometry
 * options cannot make the field wide enough); organs, bones and vessels sit where they do in a patient, in Hounsfield
 * units, with smooth texture and scanner noise, stored in one of the scanner orientations and voxel sizes.
 */
export function generatePhantom(seed: number, options: PhantomOptions = {}): Phantom {
  const geometry = { ...DEFAULT_GEOMETRY, ...options.geometry };
  validateGeometry(geometry);
  const noiseRange = options.noiseHu ?? [10, 20];
  if (!(noiseRange[0] >= 0 && noiseRange[1] >= noiseRange[0])) {
    throw new PhantomOptionError(`phantom noise range [${noiseRange.join(', ')}] must be >= 0, low to high`);
  }
  const root = new Rng(seed);
  const rng = root.fork(1);
  const anatomy = randomAnatomy(root.fork(2));
  const fill = geometry.bodyFill[0] + (geometry.bodyFill[1] - geometry.bodyFill[0]) * rng.uniform();
  const acq = randomAcquisition(rng, geometry, { width: 2 * anatomy.halfWidth, length: anatomy.zMax - anatomy.zMin, fill });
  const contrast = options.contrast === undefined || options.contrast === 'random' ? rng.uniform() < 0.5 : options.contrast;
  const noiseHu = noiseRange[0] + (noiseRange[1] - noiseRange[0]) * rng.uniform();
  const storedType = options.storedType === undefined || options.storedType === 'random' ? (rng.uniform() < 0.8 ? 'int16' : 'float32') : options.storedType;

  const place = placement(anatomy, acq, fill, rng);
  const grid = patientGrid(acq, place);
  const labels = new Uint8Array(acq.shape[0] * acq.shape[1] * acq.shape[2]);
  const organs = new Uint8Array(labels.length);
  for (const op of anatomy.ops) {
    const also = { labels: organs, value: op.organ === undefined ? 0 : organLabel(op.organ) };
    paint(labels, grid, op.shape, label(op.tissue), op.over ? labelSet(...op.over.map(label)) : undefined, also);
  }

  const cellMm = 9 * place.scale;
  const texture = smoothField(acq.shape, acq.spacing.map((s) => cellMm / s) as unknown as [number, number, number], rng.fork(3));
  const mean = Float32Array.from(TISSUES, (t) => (contrast ? t.contrast : t.hu));
  const amplitude = Float32Array.from(TISSUES, (t) => t.texture);
  synthesize(texture, labels, mean, amplitude, noiseHu, HU_RANGE, storedType === 'int16', rng.fork(4));
  const data = texture;

  const affine = worldAffine(acq, place);
  return { volume: { data, shape: acq.shape, affine }, labels, organs, acquisition: acq, storedType, contrast, noiseHu, scale: place.scale };
}

/**
 * Where the scan lies on the patient: `scale` shrinks the trunk to `fill` of the field of view where the field is
 * too small for it; `centre` is the patient point (real-size mm) at the volume's centre, near the trunk's axis,
 * the scan starting just above the liver's dome and running down the abdomen; `worldOffset` is where the trunk's origin lies in world coordinates (table position).
 */
interface Placement {
  readonly scale: number;
  readonly centre: readonly number[];
  readonly worldOffset: readonly number[];
}

function placement(anatomy: Anatomy, acq: Acquisition, fill: number, rng: Rng): Placement {
  const extent = (patientAxis: number): number => {
    const a = acq.axisOf.indexOf(patientAxis);
    return acq.shape[a] * acq.spacing[a];
  };
  const scale = Math.min(1, (fill * extent(0)) / (2 * anatomy.halfWidth), (fill * extent(1)) / (2 * anatomy.halfDepth));
  const halfLength = extent(2) / scale / 2;
  const zLo = anatomy.zMin + halfLength;
  const zHi = anatomy.zMax - halfLength;
  const [topLo, topHi] = anatomy.abdomenTop;
  const z = topLo + (topHi - topLo) * rng.uniform() - halfLength;
  const centre = [
    ((0.08 * extent(0)) / scale) * (rng.uniform() - 0.5),
    ((0.08 * extent(1)) / scale) * (rng.uniform() - 0.5),
    zLo < zHi ? Math.min(Math.max(z, zLo), zHi) : (anatomy.zMin + anatomy.zMax) / 2,
  ];
  const worldOffset = [20 * (rng.uniform() - 0.5), 40 * (rng.uniform() - 0.5), -400 + 600 * rng.uniform()];
  return { scale, centre, worldOffset };
}

/** The patient coordinate (real-size mm) of every index along each voxel axis. */
function patientGrid(acq: Acquisition, place: Placement): PatientGrid {
  const coords = [0, 1, 2].map((a) => {
    const c = new Float64Array(acq.shape[a]);
    const step = (acq.signOf[a] * acq.spacing[a]) / place.scale;
    for (let i = 0; i < c.length; i++) c[i] = place.centre[acq.axisOf[a]] + step * (i - (acq.shape[a] - 1) / 2);
    return c;
  }) as unknown as PatientGrid['coords'];
  return { shape: acq.shape, axisOf: acq.axisOf, coords };
}

/**
 * Voxel-to-world (RAS mm) affine, row-major: voxel axis a steps spacing[a] mm along world axis axisOf[a], and the
 * volume's centre lands on world `worldOffset + scale * centre`. Entries are float32, as a file stores them.
 */
function worldAffine(acq: Acquisition, place: Placement): number[] {
  const affine = new Array<number>(16).fill(0);
  affine[15] = 1;
  for (let a = 0; a < 3; a++) affine[acq.axisOf[a] * 4 + a] = acq.signOf[a] * acq.spacing[a];
  for (let w = 0; w < 3; w++) {
    let origin = place.worldOffset[w] + place.scale * place.centre[w];
    for (let a = 0; a < 3; a++) origin -= affine[w * 4 + a] * ((acq.shape[a] - 1) / 2);
    affine[w * 4 + 3] = Math.fround(origin);
  }
  return affine;
}
