/**
 * The safetensors format: an 8-byte little-endian header length, a JSON header mapping each tensor name to
 * {dtype, shape, data_offsets} (offsets relative to the data section) plus an optional "__metadata__" object of
 * strings, then the raw little-endian data. Tensors are read one byte range at a time, so a few tensors of a
 * multi-gigabyte file cost only their own size.
 */
import { WeightFileError } from './errors';
import { writeAll, writeFileAtomically } from '../../common/atomic-file';
import { RandomAccessFile, withFile } from './file-access';
import { NamedTensor, TensorMap, WeightDType, bytesPerElement, namedTensor, numel, tensorBytes, viewAs } from './tensor-map';

const DTYPE_CODES: Record<WeightDType, string> = {
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  float64: 'F64',
  int64: 'I64',
  int32: 'I32',
  uint8: 'U8',
  bool: 'BOOL',
};
const DTYPE_OF_CODE = new Map(Object.entries(DTYPE_CODES).map(([dtype, code]) => [code, dtype as WeightDType]));

/** The reference implementation refuses headers larger than this. */
const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: WeightDType;
  readonly shape: readonly number[];
  /** Byte range in the file (absolute). */
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  /** Entries in the order of their data in the file. */
  readonly entries: readonly SafetensorsEntry[];
  readonly metadata: Readonly<Record<string, string>>;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Parses and checks the header of an open safetensors file; every inconsistency is a WeightFileError. */
function parseHeader(f: RandomAccessFile): SafetensorsHeader {
  const fail = (problem: string): never => {
    throw new WeightFileError(f.file, `not a valid safetensors file: ${problem}`);
  };
  const lengthBytes = f.read(0, 8) ?? fail(`only ${f.size} bytes, shorter than the 8-byte header length`);
  const headerLength = Number(new DataView(lengthBytes.buffer).getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES) fail(`header length ${headerLength} exceeds ${MAX_HEADER_BYTES} bytes`);
  if (8 + headerLength > f.size) fail(`header length ${headerLength} runs past the end of the ${f.size}-byte file`);
  const headerBytes = f.read(8, headerLength) ?? fail('truncated header');
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (error) {
    return fail(`header is not UTF-8 JSON (${(error as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return fail('header is not a JSON object');

  const dataStart = 8 + headerLength;
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('"__metadata__" is not an object');
      for (const [k, v] of Object.entries(value as object)) {
        if (typeof v !== 'string') fail(`"__metadata__" value "${k}" is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const { dtype: code, shape, data_offsets: offsets } = (value ?? {}) as Record<string, unknown>;
    const dtype = DTYPE_OF_CODE.get(code as string) ?? fail(`tensor "${name}" has unsupported dtype ${JSON.stringify(code)}`);
    if (!Array.isArray(shape) || !shape.every(isCount)) fail(`tensor "${name}" has a bad shape ${JSON.stringify(shape)}`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
      fail(`tensor "${name}" has bad data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as number[];
    const expected = numel(shape as number[]) * bytesPerElement(dtype);
    if (end - begin !== expected) fail(`tensor "${name}" spans ${end - begin} bytes, its dtype and shape need ${expected}`);
    entries.push({ name, dtype, shape: shape as number[], begin: dataStart + begin, end: dataStart + end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  // As the reference reader: the tensors tile the data section exactly, without gaps or overlaps.
  let cursor = dataStart;
  for (const e of entries) {
    if (e.begin !== cursor) fail(`tensor "${e.name}" starts at data offset ${e.begin - dataStart}, expected ${cursor - dataStart}`);
    cursor = e.end;
  }
  if (cursor !== f.size) fail(`the tensors cover ${cursor - dataStart} data bytes, the file holds ${f.size - dataStart}`);
  return { entries, metadata };
}

function readEntry(f: RandomAccessFile, e: SafetensorsEntry): NamedTensor {
  const bytes = f.read(e.begin, e.end - e.begin);
  if (!bytes) throw new WeightFileError(f.file, `tensor "${e.name}" is truncated`);
  return namedTensor(e.name, e.dtype, e.shape, viewAs(e.dtype, bytes.buffer, 0, numel(e.shape)));
}

/** The header only: names, dtypes, shapes and metadata, without reading any tensor data. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  return withFile(file, parseHeader);
}

/**
 * The tensors of a safetensors file, in file order; with `names`, only those (each must exist), read by byte range.
 */
export function readSafetensors(file: string, names?: Iterable<string>): TensorMap {
  return withFile(file, (f) => {
    const { entries } = parseHeader(f);
    let wanted = entries;
    if (names) {
      const byName = new Map(entries.map((e) => [e.name, e]));
      wanted = [...names].map((n) => {
        const entry = byName.get(n);
        if (!entry) throw new WeightFileError(file, `has no tensor "${n}"`);
        return entry;
      });
    }
    return new Map(wanted.map((e) => [e.name, readEntry(f, e)]));
  });
}

/**
 * Writes the tensors in the given order, the header padded with spaces to a multiple of 8 bytes as the reference
 * writer does. The file appears complete or not at all.
 */
export function writeSafetensors(file: string, tensors: Iterable<NamedTensor>, metadata?: Readonly<Record<string, string>>): void {
  const list = [...tensors];
  const header: Record<string, unknown> = Object.create(null);
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of list) {
    if (t.name === '__metadata__' || Object.hasOwn(header, t.name)) throw new Error(`writeSafetensors(${file}): duplicate or reserved tensor name "${t.name}"`);
    const size = t.data.byteLength;
    header[t.name] = { dtype: DTYPE_CODES[t.dtype], shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - (jsonBytes % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));
  writeFileAtomically(file, (fd) => {
    writeAll(fd, prefix);
    writeAll(fd, headerBytes);
    for (const t of list) writeAll(fd, tensorBytes(t));
  });
}
