import { BadVolumeError } from './errors';

/** The NIfTI datatypes we read, by code: element size in bytes and how to decode one element. */
export const DATATYPES = {
  2: { name: 'uint8', bytes: 1 },
  4: { name: 'int16', bytes: 2 },
  8: { name: 'int32', bytes: 4 },
  16: { name: 'float32', bytes: 4 },
  64: { name: 'float64', bytes: 8 },
  256: { name: 'int8', bytes: 1 },
  512: { name: 'uint16', bytes: 2 },
  768: { name: 'uint32', bytes: 4 },
  1024: { name: 'int64', bytes: 8 },
  1280: { name: 'uint64', bytes: 8 },
} as const;
export type DatatypeCode = keyof typeof DATATYPES;
export type DatatypeName = (typeof DATATYPES)[DatatypeCode]['name'];

/** Header facts of a single-file NIfTI-1 or NIfTI-2 volume, as stored (dims already squeezed to 3-D). */
export interface NiftiHeader {
  readonly version: 1 | 2;
  readonly littleEndian: boolean;
  /** The full stored dim[0..7]. */
  readonly dim: readonly number[];
  readonly shape: readonly [number, number, number];
  readonly datatype: DatatypeCode;
  readonly datatypeName: DatatypeName;
  readonly bitpix: number;
  /** Byte offset of the voxel data in the (decompressed) file. */
  readonly voxOffset: number;
  readonly pixdim: readonly number[];
  readonly sclSlope: number;
  readonly sclInter: number;
  readonly qformCode: number;
  readonly sformCode: number;
  /** quatern_b, quatern_c, quatern_d. */
  readonly quatern: readonly [number, number, number];
  readonly qoffset: readonly [number, number, number];
  /** srow_x, srow_y, srow_z concatenated (12 numbers). */
  readonly srow: readonly number[];
  readonly xyztUnits: number;
}

export const NIFTI1_HEADER_BYTES = 348;
export const NIFTI2_HEADER_BYTES = 540;
/** Bytes of a header plus its 4-byte extension flag: the smallest data offset of a single-file NIfTI. */
const SINGLE_FILE_OFFSET = { 1: 352, 2: 544 } as const;
/** Dimension and voxel-count limits, checked before any voxel buffer is allocated. */
export const MAX_DIM = 10000;
export const MAX_VOXELS = 2 ** 30;

/**
 * Parses and validates the header at the start of `bytes` (at least 540 bytes, or the whole file if shorter).
 * Throws BadVolumeError naming `file` for anything that is not a usable 3-D single-file NIfTI.
 */
export function parseNiftiHeader(bytes: Uint8Array, file: string): NiftiHeader {
  const bad = (problem: string): never => {
    throw new BadVolumeError(file, problem);
  };
  if (bytes.length < 4) bad(`not a NIfTI file (only ${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const sizeLE = view.getInt32(0, true);
  const sizeBE = view.getInt32(0, false);
  const isSize = (n: number) => sizeLE === n || sizeBE === n;
  if (!isSize(NIFTI1_HEADER_BYTES) && !isSize(NIFTI2_HEADER_BYTES)) {
    bad('not a NIfTI file (header size field is neither 348 nor 540)');
  }
  const version: 1 | 2 = isSize(NIFTI1_HEADER_BYTES) ? 1 : 2;
  const le = sizeLE === NIFTI1_HEADER_BYTES || sizeLE === NIFTI2_HEADER_BYTES;
  const headerBytes = version === 1 ? NIFTI1_HEADER_BYTES : NIFTI2_HEADER_BYTES;
  if (bytes.length < headerBytes) bad(`truncated NIfTI-${version} header (${bytes.length} of ${headerBytes} bytes)`);
  const magic = String.fromCharCode(...bytes.subarray(version === 1 ? 344 : 4, version === 1 ? 347 : 7));
  if (magic === (version === 1 ? 'ni1' : 'ni2')) {
    bad('a header/image pair (.hdr/.img) is not supported; convert it to a single .nii file');
  }
  if (magic !== (version === 1 ? 'n+1' : 'n+2')) bad(`not a NIfTI file (bad magic ${JSON.stringify(magic)})`);

  const i16 = (o: number) => view.getInt16(o, le);
  const i32 = (o: number) => view.getInt32(o, le);
  const f32 = (o: number) => view.getFloat32(o, le);
  const f64 = (o: number) => view.getFloat64(o, le);
  const i64 = (o: number) => Number(view.getBigInt64(o, le));
  const v1 = version === 1;
  const dim = Array.from({ length: 8 }, (_, i) => (v1 ? i16(40 + 2 * i) : i64(16 + 8 * i)));
  const pixdim = Array.from({ length: 8 }, (_, i) => (v1 ? f32(76 + 4 * i) : f64(104 + 8 * i)));
  const datatype = v1 ? i16(70) : i16(12);
  const bitpix = v1 ? i16(72) : i16(14);
  const rawOffset = v1 ? f32(108) : i64(168);
  const real = (o1: number, o2: number) => (v1 ? f32(o1) : f64(o2));
  const sclSlope = real(112, 176);
  const sclInter = real(116, 184);
  const qformCode = v1 ? i16(252) : i32(344);
  const sformCode = v1 ? i16(254) : i32(348);
  const quatern: [number, number, number] = [real(256, 352), real(260, 360), real(264, 368)];
  const qoffset: [number, number, number] = [real(268, 376), real(272, 384), real(276, 392)];
  const srow = Array.from({ length: 12 }, (_, i) => real(280 + 4 * i, 400 + 8 * i));
  const xyztUnits = v1 ? bytes[123] : i32(500);

  const ndim = dim[0];
  if (!(ndim >= 1 && ndim <= 7)) bad(`invalid number of dimensions dim[0]=${ndim}`);
  const sizes = dim.slice(1, ndim + 1);
  if (sizes.some((d) => !(d >= 1))) bad(`zero or negative dimension in [${sizes.join(', ')}]`);
  if (ndim < 3) bad(`${ndim}-D image [${sizes.join(', ')}]; a 3-D CT volume is required`);
  if (sizes.slice(3).some((d) => d !== 1)) bad(`${ndim}-D image [${sizes.join(', ')}]; a 3-D CT volume is required`);
  const shape: [number, number, number] = [sizes[0], sizes[1], sizes[2]];
  if (shape.some((d) => d > MAX_DIM)) bad(`absurd dimensions [${shape.join(', ')}] (more than ${MAX_DIM} along an axis)`);
  if (shape[0] * shape[1] * shape[2] > MAX_VOXELS) bad(`absurd dimensions [${shape.join(', ')}] (more than 2^30 voxels)`);
  if (!(datatype in DATATYPES)) bad(`unsupported NIfTI datatype code ${datatype}`);
  const type = DATATYPES[datatype as DatatypeCode];
  if (bitpix !== type.bytes * 8) bad(`bitpix ${bitpix} does not match datatype ${type.name}`);
  if (!Number.isFinite(rawOffset) || rawOffset > Number.MAX_SAFE_INTEGER) bad(`invalid vox_offset ${rawOffset}`);
  // nibabel's fix for a single-file header whose offset points inside the header: use the standard offset.
  const voxOffset = rawOffset < SINGLE_FILE_OFFSET[version] ? SINGLE_FILE_OFFSET[version] : Math.floor(rawOffset);

  return {
    version,
    littleEndian: le,
    dim,
    shape,
    datatype: datatype as DatatypeCode,
    datatypeName: type.name,
    bitpix,
    voxOffset,
    pixdim,
    sclSlope,
    sclInter,
    qformCode,
    sformCode,
    quatern,
    qoffset,
    srow,
    xyztUnits,
  };
}

export function imageByteLength(header: NiftiHeader): number {
  return header.shape[0] * header.shape[1] * header.shape[2] * DATATYPES[header.datatype].bytes;
}
