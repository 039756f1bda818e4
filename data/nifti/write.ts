import * as zlib from 'zlib';
import { writeBytesAtomically } from '../../common/atomic-file';
import type { Volume } from '../volume';
import { closestOrthogonal } from '../transforms/orientation';
import { columnNorms, linearPart, roundHalfEven } from '../transforms/matrix';
import type { NiftiHeader } from './header';

export type WriteDatatype = 'float32' | 'int16' | 'uint8';

/** The header fields that place a volume in the world; copied verbatim they give a reader the same affine. */
export type NiftiGeometry = Pick<NiftiHeader, 'pixdim' | 'qformCode' | 'sformCode' | 'quatern' | 'qoffset' | 'srow' | 'xyztUnits'>;

export interface WriteNiftiOptions {
  /**
   * Stored element type; int16 and uint8 values are rounded (half to even, as numpy) and clamped to the type's
   * range. Default float32.
   */
  readonly datatype?: WriteDatatype;
  /** gzip the file; default: when the name ends in `.gz`. */
  readonly gzip?: boolean;
  /**
   * Header geometry to write as it is (e.g. that of the scan a label map belongs to), instead of qform and sform
   * derived from the volume's affine. Its pixdim, qform/sform codes, quaternion, offsets, srows and units.
   */
  readonly geometry?: NiftiGeometry;
}

const DATATYPE_CODES: Record<WriteDatatype, { code: number; bytes: number; min: number; max: number }> = {
  float32: { code: 16, bytes: 4, min: -Infinity, max: Infinity },
  int16: { code: 4, bytes: 2, min: -32768, max: 32767 },
  uint8: { code: 2, bytes: 1, min: 0, max: 255 },
};

const HEADER_BYTES = 348;
const VOX_OFFSET = 352;

/**
 * Writes a single-file NIfTI-1 (`.nii` or `.nii.gz`) with the volume's affine as both sform and qform (code 1,
 * scanner), atomically: a temporary file in the same folder is renamed over `file` only once complete.
 */
export function writeNifti(file: string, volume: Volume, options: WriteNiftiOptions = {}): void {
  const datatype = options.datatype ?? 'float32';
  const gzip = options.gzip ?? file.endsWith('.gz');
  const bytes = encodeNifti(volume, datatype, options.geometry);
  writeBytesAtomically(file, gzip ? zlib.gzipSync(bytes, { level: 6 }) : bytes);
}

/** The uncompressed bytes of a NIfTI-1 file holding `volume`. */
export function encodeNifti(volume: Volume, datatype: WriteDatatype, geometry?: NiftiGeometry): Uint8Array {
  const [nx, ny, nz] = volume.shape;
  const type = DATATYPE_CODES[datatype];
  const bytes = new Uint8Array(VOX_OFFSET + nx * ny * nz * type.bytes);
  const view = new DataView(bytes.buffer);
  writeHeader(view, volume, datatype, geometry ?? affineGeometry(volume.affine));
  const image =
    datatype === 'float32'
      ? new Float32Array(bytes.buffer, VOX_OFFSET)
      : datatype === 'int16'
        ? new Int16Array(bytes.buffer, VOX_OFFSET)
        : bytes.subarray(VOX_OFFSET);
  const src = volume.data;
  let d = 0;
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const v = src[(x * ny + y) * nz + z];
        image[d++] = datatype === 'float32' ? v : Math.min(Math.max(roundHalfEven(v), type.min), type.max);
      }
    }
  }
  return bytes;
}

/** qform and sform (code 1, scanner) from the affine, millimetres and seconds. */
function affineGeometry(affine: readonly number[]): NiftiGeometry {
  const { quaternion, qfac } = affineQuaternion(affine);
  return {
    pixdim: [qfac, ...columnNorms(affine), 1, 1, 1, 1],
    qformCode: 1,
    sformCode: 1,
    quatern: quaternion,
    qoffset: [affine[3], affine[7], affine[11]],
    srow: affine.slice(0, 12),
    xyztUnits: 2 | 8,
  };
}

function writeHeader(view: DataView, volume: Volume, datatype: WriteDatatype, geometry: NiftiGeometry): void {
  const le = true;
  const type = DATATYPE_CODES[datatype];
  view.setInt32(0, HEADER_BYTES, le);
  [3, ...volume.shape, 1, 1, 1, 1].forEach((d, i) => view.setInt16(40 + 2 * i, d, le));
  view.setInt16(70, type.code, le);
  view.setInt16(72, type.bytes * 8, le);
  for (let i = 0; i < 8; i++) view.setFloat32(76 + 4 * i, geometry.pixdim[i] ?? 1, le);
  view.setFloat32(108, VOX_OFFSET, le);
  view.setFloat32(112, 1, le);
  view.setFloat32(116, 0, le);
  view.setUint8(123, geometry.xyztUnits);
  view.setInt16(252, geometry.qformCode, le);
  view.setInt16(254, geometry.sformCode, le);
  geometry.quatern.forEach((q, i) => view.setFloat32(256 + 4 * i, q, le));
  geometry.qoffset.forEach((t, i) => view.setFloat32(268 + 4 * i, t, le));
  for (let i = 0; i < 12; i++) view.setFloat32(280 + 4 * i, geometry.srow[i], le);
  [0x6e, 0x2b, 0x31, 0].forEach((c, i) => view.setUint8(344 + i, c));
}

/** quatern_b/c/d and qfac of the rotation closest to the affine's direction cosines (as nibabel's set_qform). */
function affineQuaternion(affine: readonly number[]): { quaternion: [number, number, number]; qfac: number } {
  const zooms = columnNorms(affine);
  const r = closestOrthogonal(linearPart(affine).map((v, i) => v / zooms[i % 3]));
  const det = r[0] * (r[4] * r[8] - r[5] * r[7]) - r[1] * (r[3] * r[8] - r[5] * r[6]) + r[2] * (r[3] * r[7] - r[4] * r[6]);
  const qfac = det < 0 ? -1 : 1;
  if (qfac < 0) for (const i of [2, 5, 8]) r[i] = -r[i];
  let [a, b, c, d] = rotationQuaternion(r);
  if (a < 0) [a, b, c, d] = [-a, -b, -c, -d];
  return { quaternion: [b, c, d], qfac };
}

/** Unit quaternion (w, x, y, z) of a proper rotation matrix (row-major 3x3), by the largest-diagonal method. */
function rotationQuaternion(r: readonly number[]): [number, number, number, number] {
  const trace = r[0] + r[4] + r[8];
  if (trace > 0) {
    const s = 2 * Math.sqrt(trace + 1);
    return [s / 4, (r[7] - r[5]) / s, (r[2] - r[6]) / s, (r[3] - r[1]) / s];
  }
  if (r[0] > r[4] && r[0] > r[8]) {
    const s = 2 * Math.sqrt(1 + r[0] - r[4] - r[8]);
    return [(r[7] - r[5]) / s, s / 4, (r[1] + r[3]) / s, (r[2] + r[6]) / s];
  }
  if (r[4] > r[8]) {
    const s = 2 * Math.sqrt(1 + r[4] - r[0] - r[8]);
    return [(r[2] - r[6]) / s, (r[1] + r[3]) / s, s / 4, (r[5] + r[7]) / s];
  }
  const s = 2 * Math.sqrt(1 + r[8] - r[0] - r[4]);
  return [(r[3] - r[1]) / s, (r[2] + r[6]) / s, (r[5] + r[7]) / s, s / 4];
}
