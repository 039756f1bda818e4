import { createHash } from 'node:crypto';
import { deflateSync, inflateSync } from 'fflate';
import type { Volume } from '../volume';
import { voxelCount } from '../volume';
import { CACHE_DTYPES, CacheDtype, dequantize, quantize } from './quantize';
import type { PreprocessRecord } from '../transforms/invert';
import { MAX_LABEL } from '../segmentation/label-map';

/**
 * One cache entry on disk:
 *   magic "VOCOVOL1" | u32 header length | header JSON (utf-8) | payload | sha256 of everything before it (32 bytes)
 * A pair entry's payload is the image's followed by the label's; its header adds `label` and the `record`.
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
  /** Pair entries: the label map (on the image's grid), stored exactly after the image's payload. */
  label?: { dtype: LabelDtype; payloadBytes: number };
  /** Pair entries: the preprocessing record that inverts the chain. */
  record?: PreprocessRecord;
}

/** How label maps are stored: class indices exactly, in the smallest integer type that holds them. */
type LabelDtype = 'uint8' | 'int16';

/** An image and its label map, preprocessed together, with the record to invert the preprocessing. */
export interface CachedPair {
  readonly image: Volume;
  /** On the image's grid. */
  readonly label: Volume;
  readonly record: PreprocessRecord;
}

/** How one kind of value is stored in a cache entry. */
export interface EntryCodec<T> {
  encode(key: string, value: T, options: EncodeOptions): Buffer;
  decode(bytes: Uint8Array, key: string): T;
}

/** The entry is damaged, truncated, of another format version, or belongs to another key. */
export class CorruptCacheEntryError extends Error {}

export function encodeEntry(key: string, volume: Volume, options: EncodeOptions): Buffer {
  const { header, payload } = imagePart(key, volume, options);
  return assemble(header, [payload]);
}

/** Decodes an entry, checking its digest and that it was written for `key`. */
export function decodeEntry(bytes: Uint8Array, key: string): Volume {
  const { header, payload } = openEntry(bytes, key);
  if (header.label) throw new CorruptCacheEntryError('entry holds an image/label pair, expected an image');
  if (payload.length !== header.payloadBytes) throw new CorruptCacheEntryError('payload length disagrees with header');
  return decodeImage(header, payload);
}

/** A pair entry: the image as the cache's dtype stores it, the label exactly (uint8 or int16), the record as JSON. */
export function encodePairEntry(key: string, pair: CachedPair, options: EncodeOptions): Buffer {
  if (!pair.label.shape.every((n, i) => n === pair.image.shape[i])) {
    throw new Error(`encodePairEntry: label ${pair.label.shape.join('x')} is not on the image grid ${pair.image.shape.join('x')}`);
  }
  const { header, payload } = imagePart(key, pair.image, options);
  const { dtype, bytes } = labelBytes(pair.label.data);
  const labelPayload = options.compression === 'deflate' ? deflateSync(bytes, { level: 1 }) : bytes;
  return assemble({ ...header, label: { dtype, payloadBytes: labelPayload.byteLength }, record: pair.record }, [payload, labelPayload]);
}

export function decodePairEntry(bytes: Uint8Array, key: string): CachedPair {
  const { header, payload } = openEntry(bytes, key);
  const { label, record } = header;
  if (!label || !record) throw new CorruptCacheEntryError('entry holds an image only, expected an image/label pair');
  if (payload.length !== header.payloadBytes + label.payloadBytes) throw new CorruptCacheEntryError('payload length disagrees with header');
  const image = decodeImage(header, payload.subarray(0, header.payloadBytes));
  const stored = payload.subarray(header.payloadBytes);
  const raw = header.compression === 'deflate' ? inflateSync(stored) : stored;
  const count = voxelCount(header.shape);
  if (raw.byteLength !== count * (label.dtype === 'uint8' ? 1 : 2)) throw new CorruptCacheEntryError('label payload has the wrong size');
  const values = label.dtype === 'uint8' ? raw : new Int16Array(new Uint8Array(raw).buffer);
  return { image, label: { data: Float32Array.from(values), shape: image.shape, affine: image.affine }, record };
}

export const VOLUME_ENTRY: EntryCodec<Volume> = { encode: encodeEntry, decode: decodeEntry };
export const PAIR_ENTRY: EntryCodec<CachedPair> = { encode: encodePairEntry, decode: decodePairEntry };

function labelBytes(values: Float32Array): { dtype: LabelDtype; bytes: Uint8Array } {
  let max = 0;
  for (const v of values) {
    if (!(Number.isInteger(v) && v >= 0 && v <= MAX_LABEL)) throw new Error(`cache: label value ${v} is not a class index`);
    if (v > max) max = v;
  }
  if (max <= 255) return { dtype: 'uint8', bytes: Uint8Array.from(values) };
  return { dtype: 'int16', bytes: new Uint8Array(Int16Array.from(values).buffer) };
}

function imagePart(key: string, volume: Volume, options: EncodeOptions): { header: EntryHeader; payload: Uint8Array } {
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
  return { header, payload };
}

function assemble(header: EntryHeader, payloads: Uint8Array[]): Buffer {
  // Padded with spaces so that the payload starts 8-byte aligned: typed views decode it without a copy.
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const headerBytes = Buffer.concat([json, Buffer.alloc((8 - ((MAGIC.length + 4 + json.length) % 8)) % 8, ' ')]);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(headerBytes.length);
  const body = Buffer.concat([MAGIC, length, headerBytes, ...payloads]);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

/** Checks the digest and the key; returns the header and everything between it and the digest. */
function openEntry(bytes: Uint8Array, key: string): { header: EntryHeader; payload: Buffer } {
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
  return { header, payload: buf.subarray(headerStart + headerLength, bodyEnd) };
}

function decodeImage(header: EntryHeader, payload: Uint8Array): Volume {
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
    Array.isArray(header.affine) && header.affine.length === 16 &&
    (header.label === undefined || ((header.label.dtype === 'uint8' || header.label.dtype === 'int16') && Number.isInteger(header.label.payloadBytes)));
  if (!valid) throw new CorruptCacheEntryError(`unsupported header (format version ${header.version})`);
  return header;
}
