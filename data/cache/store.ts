import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Volume } from '../volume';
import { CacheCompression, CorruptCacheEntryError, EntryCodec, VOLUME_ENTRY } from './format';
import type { CacheDtype } from './quantize';

export interface VolumeCacheOptions {
  readonly dir: string;
  /** Storage type of new entries (default uint16: error <= range / 131070, i.e. 7.7e-6 on [0, 1]). */
  readonly dtype?: CacheDtype;
  /** Compression of new entries (default none: on uint16, deflate saves about a third of the bytes and makes
   * decoding about 6x slower; bench/data.bench.ts measures both). */
  readonly compression?: CacheCompression;
}

/** A source file that could not be preprocessed, remembered so that later runs do not retry it each time. */
export interface BadFileRecord {
  readonly path: string;
  readonly reason: string;
}

/** A cache lookup; `volume` is the stored value: a Volume, or a CachedPair for pair entries (PAIR_ENTRY). */
export type Lookup<T = Volume> =
  | { readonly state: 'hit'; readonly volume: T }
  | { readonly state: 'missing' }
  | { readonly state: 'corrupt'; readonly reason: string }
  | { readonly state: 'bad'; readonly record: BadFileRecord };

export const DEFAULT_CACHE_DTYPE: CacheDtype = 'uint16';

/**
 * The cache of preprocessed volumes and pairs inside a `--cache-dir` (which also holds the built-in phantom data):
 * where `voco train` and `voco finetune` read entries and `voco cache build` writes them.
 */
export const volumeCacheDir = (cacheDir: string): string => join(cacheDir, 'volumes');
export const DEFAULT_CACHE_COMPRESSION: CacheCompression = 'none';

/**
 * Preprocessed volumes on disk, one file per key under `dir/<first two hex digits>/`. Writers never expose a
 * partial file (temp file in the same folder, fsync, rename), so several processes may fill the same cache:
 * when two write one key, the last rename wins and both files are valid.
 */
export class VolumeCache {
  readonly dir: string;
  readonly dtype: CacheDtype;
  readonly compression: CacheCompression;

  constructor(options: VolumeCacheOptions) {
    this.dir = options.dir;
    this.dtype = options.dtype ?? DEFAULT_CACHE_DTYPE;
    this.compression = options.compression ?? DEFAULT_CACHE_COMPRESSION;
  }

  entryPath(key: string): string {
    return join(this.dir, key.slice(0, 2), `${key}.vol`);
  }

  badRecordPath(key: string): string {
    return join(this.dir, key.slice(0, 2), `${key}.bad.json`);
  }

  lookup(key: string): Promise<Lookup> {
    return this.lookupWith(key, VOLUME_ENTRY);
  }

  /** A lookup of an entry of another kind than a single volume (e.g. PAIR_ENTRY). */
  async lookupWith<T>(key: string, codec: EntryCodec<T>): Promise<Lookup<T>> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.entryPath(key));
    } catch (error) {
      if (!isNotFound(error)) throw error;
      const record = await this.readBadRecord(key);
      return record ? { state: 'bad', record } : { state: 'missing' };
    }
    try {
      return { state: 'hit', volume: codec.decode(bytes, key) };
    } catch (error) {
      if (error instanceof CorruptCacheEntryError) return { state: 'corrupt', reason: error.message };
      throw error;
    }
  }

  /** Stores `volume` and returns it as later reads will see it (after quantisation), so that a run does not
   * depend on whether it found an entry or built it. */
  write(key: string, volume: Volume): Promise<Volume> {
    return this.writeWith(key, volume, VOLUME_ENTRY);
  }

  /** `write` of an entry of another kind than a single volume (e.g. PAIR_ENTRY). */
  async writeWith<T>(key: string, value: T, codec: EntryCodec<T>): Promise<T> {
    const bytes = codec.encode(key, value, this);
    await this.writeAtomically(this.entryPath(key), bytes);
    await rm(this.badRecordPath(key), { force: true });
    return codec.decode(bytes, key);
  }

  async recordBad(key: string, record: BadFileRecord): Promise<void> {
    await this.writeAtomically(this.badRecordPath(key), Buffer.from(JSON.stringify(record) + '\n', 'utf8'));
  }

  private async readBadRecord(key: string): Promise<BadFileRecord | undefined> {
    try {
      const record = JSON.parse(await readFile(this.badRecordPath(key), 'utf8')) as BadFileRecord;
      return typeof record.path === 'string' && typeof record.reason === 'string' ? record : undefined;
    } catch {
      return undefined; // missing or unreadable: the source is simply tried again
    }
  }

  private async writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
    const folder = join(path, '..');
    await mkdir(folder, { recursive: true });
    const temp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
    const handle = await open(temp, 'w');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } catch (error) {
      await handle.close();
      await rm(temp, { force: true });
      throw error;
    }
    await handle.close();
    try {
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}
