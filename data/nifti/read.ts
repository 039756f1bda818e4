import * as fs from 'fs';
import { Gunzip } from 'fflate';
import type { Volume } from '../volume';
import { BadVolumeError } from './errors';
import { NIFTI2_HEADER_BYTES, NiftiHeader, imageByteLength, parseNiftiHeader } from './header';
import { niftiAffine } from './affine';
import { decodeVoxels } from './decode';
import { crc32 } from './crc32';
import { columnNorms } from '../transforms/matrix';

export interface LoadedVolume {
  readonly volume: Volume;
  readonly header: NiftiHeader;
}

const CHUNK_BYTES = 1 << 20;
/**
 * 0.54 m^3, more than a whole-body CT (about 500 x 500 x 2000 mm); bounds the size of any resampled volume
 * (under 2^29 voxels at 1 mm^3).
 */
const MAX_FIELD_OF_VIEW_MM3 = 2 ** 29;
/** DEFLATE cannot expand data by more than about 1032:1; a header promising more than that is truncated. */
const MAX_DEFLATE_RATIO = 1032;

/**
 * Reads a 3-D NIfTI-1/NIfTI-2 volume (`.nii`, or gzip-compressed whatever the name) as float32 values after the
 * header's read scaling, with nibabel's choice of affine. Throws BadVolumeError for anything unusable.
 */
export function loadVolume(file: string): LoadedVolume {
  return withFile(file, (fd) => {
    const size = fs.fstatSync(fd).size;
    const { header, raw } = isGzip(readAt(fd, 0, 2)) ? readGzip(fd, size, file) : readPlain(fd, size, file);
    const affine = niftiAffine(header);
    if (!affine.every(Number.isFinite)) throw new BadVolumeError(file, 'the header affine contains NaN or infinite values');
    if (Math.abs(det3(affine)) < 1e-12) throw new BadVolumeError(file, 'the header affine is singular (zero voxel size?)');
    const extent = columnNorms(affine).map((d, i) => d * header.shape[i]);
    if (extent[0] * extent[1] * extent[2] > MAX_FIELD_OF_VIEW_MM3) {
      const fov = extent.map((e) => e.toPrecision(3)).join(' x ');
      throw new BadVolumeError(file, `absurd field of view ${fov} mm (voxel sizes from the header affine)`);
    }
    const { data, nonFinite } = decodeVoxels(header, raw);
    if (nonFinite > 0) throw new BadVolumeError(file, `${nonFinite} voxels are NaN or infinite`);
    return { volume: { data, shape: header.shape, affine }, header };
  });
}

/**
 * Only the header of a NIfTI file (plain or gzip-compressed; a compressed file is decompressed only as far as the
 * header), e.g. to compare grids without reading voxels. Throws BadVolumeError for anything unusable.
 */
export function loadNiftiHeader(file: string): NiftiHeader {
  return withFile(file, (fd) => {
    const start = readAt(fd, 0, NIFTI2_HEADER_BYTES);
    if (!isGzip(start)) return parseNiftiHeader(start, file);
    let prefix: Uint8Array = new Uint8Array(0);
    const gunzip = new Gunzip((chunk) => {
      if (prefix.length < NIFTI2_HEADER_BYTES) prefix = concat(prefix, chunk);
    });
    try {
      const buffer = new Uint8Array(1 << 14);
      for (let position = 0; prefix.length < NIFTI2_HEADER_BYTES; ) {
        const n = fs.readSync(fd, buffer, 0, buffer.length, position);
        position += n;
        gunzip.push(buffer.subarray(0, n), n === 0);
        if (n === 0) break;
      }
    } catch (error) {
      throw new BadVolumeError(file, `corrupt or truncated gzip data (${(error as Error).message})`);
    }
    return parseNiftiHeader(prefix, file);
  });
}

/** Runs `body` on the open file, closing it afterwards; a file that cannot be opened is a BadVolumeError. */
function withFile<T>(file: string, body: (fd: number) => T): T {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    throw new BadVolumeError(file, `cannot open (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  try {
    return body(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function isGzip(start: Uint8Array): boolean {
  return start.length >= 2 && start[0] === 0x1f && start[1] === 0x8b;
}

function det3(m: readonly number[]): number {
  return (
    m[0] * (m[5] * m[10] - m[6] * m[9]) - m[1] * (m[4] * m[10] - m[6] * m[8]) + m[2] * (m[4] * m[9] - m[5] * m[8])
  );
}

function readAt(fd: number, position: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, out, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done === length ? out : out.subarray(0, done);
}

function readPlain(fd: number, size: number, file: string): { header: NiftiHeader; raw: Uint8Array } {
  const header = parseNiftiHeader(readAt(fd, 0, Math.min(size, NIFTI2_HEADER_BYTES)), file);
  const need = imageByteLength(header);
  if (size < header.voxOffset + need) {
    throw new BadVolumeError(file, `truncated: ${size} bytes, the header needs ${header.voxOffset + need}`);
  }
  return { header, raw: readAt(fd, header.voxOffset, need) };
}

/**
 * Decompresses chunk by chunk, keeping only the header bytes and one buffer for the image (allocated once the
 * header has been validated), and checks the gzip trailer.
 */
function readGzip(fd: number, size: number, file: string): { header: NiftiHeader; raw: Uint8Array } {
  const collector = new ImageCollector(file, size);
  let crc = 0;
  let members = 0;
  const gunzip = new Gunzip((chunk) => {
    crc = crc32(chunk, crc);
    collector.push(chunk);
  });
  gunzip.onmember = () => members++;
  try {
    const buffer = new Uint8Array(CHUNK_BYTES);
    for (let position = 0; ; ) {
      const n = fs.readSync(fd, buffer, 0, CHUNK_BYTES, position);
      position += n;
      gunzip.push(buffer.subarray(0, n), n === 0);
      if (n === 0) break;
    }
  } catch (error) {
    if (error instanceof BadVolumeError) throw error;
    throw new BadVolumeError(file, `corrupt or truncated gzip data (${(error as Error).message})`);
  }
  // fflate checks neither the CRC nor the length in the gzip trailer; a single-member file is checked here.
  const trailer = readAt(fd, Math.max(size - 8, 0), 8);
  const view = new DataView(trailer.buffer);
  const intact =
    trailer.length === 8 && view.getUint32(0, true) === crc && view.getUint32(4, true) === collector.produced % 2 ** 32;
  if (members === 0 && !intact) throw new BadVolumeError(file, 'corrupt or truncated gzip data (checksum or length mismatch)');
  return collector.finish();
}

/** Receives the decompressed stream: the header first, then the image bytes into a buffer of their exact size. */
class ImageCollector {
  private prefix: Uint8Array = new Uint8Array(0);
  private header: NiftiHeader | null = null;
  private image = new Uint8Array(0);
  private filled = 0;
  produced = 0;

  constructor(
    private readonly file: string,
    private readonly compressedSize: number,
  ) {}

  complete(): boolean {
    return this.header !== null && this.filled === this.image.length;
  }

  push(chunk: Uint8Array): void {
    if (this.complete()) return;
    const start = this.produced;
    this.produced += chunk.length;
    if (this.header) return this.copy(chunk, start);
    this.prefix = concat(this.prefix, chunk);
    if (this.prefix.length >= NIFTI2_HEADER_BYTES) this.begin();
  }

  finish(): { header: NiftiHeader; raw: Uint8Array } {
    if (!this.header) this.begin();
    const header = this.header as unknown as NiftiHeader;
    if (!this.complete()) {
      const need = header.voxOffset + imageByteLength(header);
      throw new BadVolumeError(this.file, `truncated: decompressed to ${this.produced} bytes, the header needs ${need}`);
    }
    return { header, raw: this.image };
  }

  private begin(): void {
    const header = parseNiftiHeader(this.prefix, this.file);
    const need = imageByteLength(header);
    if (header.voxOffset + need > this.compressedSize * MAX_DEFLATE_RATIO + 1024) {
      throw new BadVolumeError(
        this.file,
        `truncated: ${this.compressedSize} compressed bytes cannot hold the ${need} image bytes the header needs`,
      );
    }
    this.header = header;
    this.image = new Uint8Array(need);
    this.copy(this.prefix, 0);
    this.prefix = new Uint8Array(0);
  }

  /** Copies the part of `chunk` (which starts at stream position `start`) that falls inside the image. */
  private copy(chunk: Uint8Array, start: number): void {
    const from = Math.max((this.header as NiftiHeader).voxOffset - start, 0);
    if (from >= chunk.length) return;
    const part = chunk.subarray(from, from + this.image.length - this.filled);
    this.image.set(part, this.filled);
    this.filled += part.length;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
