import { createHash } from 'node:crypto';
import { deflateSync, inflateSync } from 'fflate';
import type { Volume } from '../volume';
import { voxelCount } from '../volume';
import { CACHE_DTYPES, CacheDtype, dequantize, quantize } from './quantize';

/**
 * One cache entry on disk:
 *   magic "VOCOVOL1" | u32 header length | header JSON (utf-8) | payload | sha256 of everything before it (32 bytes)
 * The trailing digest makes a truncated or damaged entry detectable, so it is rebuilt rather than trusted.
 */
const MAGIC = Buffer.from('VOCOVOL1', 'latin1');
const DIGEST_BYTES = 32;
export const CACHE_FORMAT_VERSION = 1;

export type CacheCompression = 'none' | 'deflate';

export interface EncodeOptions {
  readonly dtype: CacheDtype;
  readonly compression: CacheCompression;
}

interface EntryHeader {
  version: number;
  key: string;
  dtype: CacheDtype;
  compression: CacheCompression;
  shape: [number, number, number];
  affine: number[];
  scale: number;
  offset: number;
  payloadBytes: number;
}

/** The entry is damaged, truncated, of another format version, or belongs to another key. */
export class CorruptCacheEntryError extends Error {}

export function encodeEntry(key: string, volume: Volume, options: EncodeOptions): Buffer {
  const q = quantize(volume.data, options.dtype);
  const payload = options.compression === 'deflate' ? deflateSync(q.bytes, { level: 1 }) : q.bytes;
  const header: EntryHeader = {
    version: CACHE_FORMAT_VERSION,
    key,
    dtype: q.dtype,
    compression: options.compression,
    shape: [volume.shape[0], volume.shape[1], volume.shape[2]],
    affine: Array.from(volume.affine),
    scale: q.scale,
    offset: q.offset,
    payloadBytes: payload.byteLength,
  };
  // Padded with spaces so that the payload starts 8-byte aligned: typed views decode it without a copy.
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const headerBytes = Buffer.concat([json, Buffer.alloc((8 - ((MAGIC.length + 4 + json.length) % 8)) % 8, ' ')]);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(headerBytes.length);
  const body = Buffer.concat([MAGIC, length, headerBytes, payload]);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

/** Decodes an entry, checking its digest and that it was written for `key`. */
export function decodeEntry(bytes: Uint8Array, key: string): Volume {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < MAGIC.length + 4 + DIGEST_BYTES || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new CorruptCacheEntryError('not a cache entry (bad magic or too short)');
  }
  const bodyEnd = buf.length - DIGEST_BYTES;
  const digest = createHash('sha256').update(buf.subarray(0, bodyEnd)).digest();
  if (!digest.equals(buf.subarray(bodyEnd))) throw new CorruptCacheEntryError('checksum mismatch (damaged or truncated)');
  const headerLength = buf.readUInt32LE(MAGIC.length);
  const headerStart = MAGIC.length + 4;
  const header = parseHeader(buf.subarray(headerStart, headerStart + headerLength));
  if (header.key !== key) throw new CorruptCacheEntryError(`entry holds key ${header.key}, expected ${key}`);
  const payload = buf.subarray(headerStart + headerLength, bodyEnd);
  if (payload.length !== header.payloadBytes) throw new CorruptCacheEntryError('payload length disagrees with header');
  const raw = header.compression === 'deflate' ? inflateSync(payload) : payload;
  const count = voxelCount(header.shape);
  let data: Float32Array;
  try {
    data = dequantize({ dtype: header.dtype, bytes: raw, scale: header.scale, offset: header.offset }, count);
  } catch (error) {
    throw new CorruptCacheEntryError((error as Error).message);
  }
  return { data, shape: header.shape, affine: header.affine };
}

function parseHeader(bytes: Buffer): EntryHeader {
  let header: EntryHeader;
  try {
    header = JSON.parse(bytes.toString('utf8')) as EntryHeader;
  } catch {
    throw new CorruptCacheEntryError('unreadable header');
  }
  const valid =
    header.version === CACHE_FORMAT_VERSION &&
    CACHE_DTYPES.includes(header.dtype) &&
    (header.compression === 'none' || header.compression === 'deflate') &&
    Array.isArray(header.shape) && header.shape.length === 3 && header.shape.every((n) => Number.isInteger(n) && n > 0) &&
    Array.isArray(header.affine) && header.affine.length === 16;
  if (!valid) throw new CorruptCacheEntryError(`unsupported header (format version ${header.version})`);
  return header;
}
