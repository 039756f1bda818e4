/**
 * The subset of ZIP that PyTorch checkpoints use: stored (uncompressed) entries, each read by byte range from the
 * file (ZIP64 included, for archives over 4 GiB), and written with their data aligned to 64 bytes as PyTorch's
 * writer does (padding in a local extra field), so readers may map tensors in place.
 */
import * as zlib from 'zlib';
import { WeightFileError } from './errors';
import { writeAll } from '../../common/atomic-file';
import { RandomAccessFile } from './file-access';

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const ZIP64_END = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EXTRA = 0x0001;
/** PyTorch's id for its alignment padding extra field ("FB"). */
const PADDING_EXTRA = 0x4246;
const U32_MAX = 0xffffffff;
/** MS-DOS date 1980-01-01, 00:00: fixed, so that the same tensors give the same bytes. */
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

export interface ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly size: number;
  readonly localHeaderOffset: number;
}

/** The central directory of a ZIP file, and reads of its stored entries by byte range. */
export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();

  constructor(private readonly f: RandomAccessFile) {
    const tailLength = Math.min(f.size, 22 + 0xffff);
    const tail = this.bytes(f.size - tailLength, tailLength);
    const tailView = view(tail);
    let eocd = -1;
    for (let i = tail.length - 22; i >= 0 && eocd < 0; i--) if (tailView.getUint32(i, true) === END_OF_CENTRAL_DIRECTORY) eocd = i;
    if (eocd < 0) this.fail('no end-of-central-directory record');
    let count = tailView.getUint16(eocd + 10, true);
    let directoryOffset = tailView.getUint32(eocd + 16, true);
    const locator = eocd - 20;
    if (locator >= 0 && tailView.getUint32(locator, true) === ZIP64_LOCATOR) {
      const end64 = view(this.bytes(Number(tailView.getBigUint64(locator + 8, true)), 56));
      if (end64.getUint32(0, true) !== ZIP64_END) this.fail('bad ZIP64 end-of-central-directory record');
      count = Number(end64.getBigUint64(32, true));
      directoryOffset = Number(end64.getBigUint64(48, true));
    }
    const directory = this.bytes(directoryOffset, f.size - directoryOffset);
    const d = view(directory);
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > directory.length || d.getUint32(p, true) !== CENTRAL_HEADER) this.fail(`central directory entry ${i} is corrupt`);
      const nameLength = d.getUint16(p + 28, true);
      const extraLength = d.getUint16(p + 30, true);
      const commentLength = d.getUint16(p + 32, true);
      const name = Buffer.from(directory.subarray(p + 46, p + 46 + nameLength)).toString('utf8');
      // ZIP64 extra: the 64-bit values of the fields saturated at 0xffffffff, in this order.
      const wide = [d.getUint32(p + 24, true), d.getUint32(p + 20, true), d.getUint32(p + 42, true)].map(Number);
      for (let e = p + 46 + nameLength; e + 4 <= p + 46 + nameLength + extraLength; e += 4 + d.getUint16(e + 2, true)) {
        if (d.getUint16(e, true) !== ZIP64_EXTRA) continue;
        let q = e + 4;
        for (let k = 0; k < 3; k++) {
          if (wide[k] === U32_MAX) {
            wide[k] = Number(d.getBigUint64(q, true));
            q += 8;
          }
        }
      }
      this.entries.set(name, { name, method: d.getUint16(p + 10, true), size: wide[0], localHeaderOffset: wide[2] });
      p += 46 + nameLength + extraLength + commentLength;
    }
  }

  /** Where the entry's data lies in the file. */
  locate(name: string): { readonly offset: number; readonly size: number } {
    const entry = this.entries.get(name);
    if (!entry) this.fail(`archive has no entry "${name}"`);
    if (entry.method !== 0) this.fail(`entry "${name}" is compressed (method ${entry.method}); only stored entries are supported`);
    const local = view(this.bytes(entry.localHeaderOffset, 30));
    if (local.getUint32(0, true) !== LOCAL_HEADER) this.fail(`entry "${name}" has no local header`);
    return { offset: entry.localHeaderOffset + 30 + local.getUint16(26, true) + local.getUint16(28, true), size: entry.size };
  }

  /** The entry's bytes in a buffer of their own. */
  read(name: string): Uint8Array {
    const { offset, size } = this.locate(name);
    return this.bytes(offset, size);
  }

  private bytes(position: number, length: number): Uint8Array {
    return this.f.read(position, length) ?? this.fail(`truncated: ${length} bytes at ${position} lie past its end`);
  }

  private fail(problem: string): never {
    throw new WeightFileError(this.f.file, `not a valid zip archive: ${problem}`);
  }
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Whether the file starts as a ZIP archive does. */
export function looksLikeZip(f: RandomAccessFile): boolean {
  const head = f.read(0, 4);
  return head !== undefined && view(head).getUint32(0, true) === LOCAL_HEADER;
}

export interface ZipWriteEntry {
  readonly name: string;
  readonly data: Uint8Array;
}

/**
 * Writes the entries as a stored ZIP archive at the start of `fd`, each entry's data at a multiple of `alignment`
 * bytes. Archives beyond 4 GiB would need ZIP64, which this writer does not produce.
 */
export function writeStoredZip(fd: number, entries: Iterable<ZipWriteEntry>, alignment = 64): void {
  const central: Buffer[] = [];
  let offset = 0;
  let count = 0;
  for (const { name, data } of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    const crc = zlib.crc32(data);
    const unpadded = offset + 30 + nameBytes.length + 4;
    const padding = (alignment - (unpadded % alignment)) % alignment;
    if (offset + 30 + nameBytes.length + 4 + padding + data.length > U32_MAX) {
      throw new Error(`zip archive would exceed 4 GiB at entry "${name}"; ZIP64 output is not supported`);
    }
    const local = Buffer.alloc(30 + nameBytes.length + 4 + padding);
    fillCommon(local, 4, crc, data.length, nameBytes.length);
    local.writeUInt32LE(LOCAL_HEADER, 0);
    local.writeUInt16LE(4 + padding, 28);
    nameBytes.copy(local, 30);
    local.writeUInt16LE(PADDING_EXTRA, 30 + nameBytes.length);
    local.writeUInt16LE(padding, 32 + nameBytes.length);
    local.fill(0x5a, 34 + nameBytes.length);

    const entry = Buffer.alloc(46 + nameBytes.length);
    entry.writeUInt32LE(CENTRAL_HEADER, 0);
    entry.writeUInt16LE(20, 4); // version made by: 2.0, MS-DOS attributes
    fillCommon(entry, 6, crc, data.length, nameBytes.length);
    entry.writeUInt32LE(offset, 42);
    nameBytes.copy(entry, 46);
    central.push(entry);

    writeAll(fd, local);
    writeAll(fd, data);
    offset += local.length + data.length;
    count++;
  }
  if (count > 0xffff) throw new Error(`zip archive with ${count} entries would need ZIP64, which is not supported`);
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(END_OF_CENTRAL_DIRECTORY, 0);
  end.writeUInt16LE(count, 8);
  end.writeUInt16LE(count, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  writeAll(fd, directory);
  writeAll(fd, end);
}

/** The fields local and central headers share, from "version needed" to the extra-field length. */
function fillCommon(header: Buffer, at: number, crc: number, size: number, nameLength: number): void {
  header.writeUInt16LE(20, at); // version needed: 2.0
  header.writeUInt16LE(0, at + 2); // flags
  header.writeUInt16LE(0, at + 4); // method: stored
  header.writeUInt16LE(0, at + 6); // time
  header.writeUInt16LE(DOS_DATE, at + 8);
  header.writeUInt32LE(crc, at + 10);
  header.writeUInt32LE(size, at + 14);
  header.writeUInt32LE(size, at + 18);
  header.writeUInt16LE(nameLength, at + 22);
}
