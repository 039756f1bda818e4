import { resolve } from 'node:path';
import { UserError } from '../../common/user-error';
import type { Volume } from '../volume';
import { cacheKey, sourceIdentity } from './key';
import type { VolumeCache } from './store';
import { EntryCodec, VOLUME_ENTRY } from './format';

/** A source file and the preprocessing to apply to it (a JSON value: it is part of the cache key). */
export interface CacheSource<P = unknown> {
  readonly path: string;
  readonly preprocessing: P;
  /** Further files the entry is made from (e.g. the label map of an image): their identities are part of the key. */
  readonly companions?: readonly string[];
}

/** Makes the value an entry stores (`T`: a Volume, or e.g. a CachedPair). */
export type Preprocess<P, T = Volume> = (path: string, preprocessing: P) => Promise<T>;

/** `volume` is the stored value: a Volume, or e.g. a CachedPair for pair entries. */
export type Outcome<T = Volume> =
  | { readonly status: 'cached'; readonly volume: T }
  | { readonly status: 'built'; readonly volume: T; readonly replacedCorrupt?: string }
  | { readonly status: 'bad'; readonly reason: string; readonly known: boolean };

export interface LoadOrBuildOptions {
  /** Try sources again that an earlier run recorded as bad (default false). */
  readonly retryBad?: boolean;
}

/**
 * The preprocessed volume of `source`: from the cache when a valid entry exists, otherwise preprocessed and written.
 * A source that fails with a user-level error (unreadable, corrupt or missing file) is recorded as bad and reported
 * as such; any other error (a bug, a full disk) propagates.
 */
export function loadOrBuild<P>(
  cache: VolumeCache,
  source: CacheSource<P>,
  preprocess: Preprocess<P>,
  options: LoadOrBuildOptions = {},
): Promise<Outcome> {
  return loadOrBuildEntry(cache, source, preprocess, VOLUME_ENTRY, options);
}

/** loadOrBuild for entries of any kind, stored through `codec`. */
export async function loadOrBuildEntry<P, T>(
  cache: VolumeCache,
  source: CacheSource<P>,
  preprocess: Preprocess<P, T>,
  codec: EntryCodec<T>,
  options: LoadOrBuildOptions = {},
): Promise<Outcome<T>> {
  let key: string;
  const files = [source.path, ...(source.companions ?? [])];
  try {
    const [identity, ...companions] = await Promise.all(files.map(sourceIdentity));
    key = cacheKey(identity, source.preprocessing, source.companions && companions);
  } catch (error) {
    if (!isBadSourceError(error)) throw error;
    const missing = (error as NodeJS.ErrnoException).path;
    const companion = files.slice(1).find((f) => missing !== undefined && resolve(f) === resolve(missing));
    const reason = companion ? `${companion}: ${describe(error, companion)}` : describe(error, source.path);
    return { status: 'bad', reason, known: false };
  }
  const found = await cache.lookupWith(key, codec);
  if (found.state === 'hit') return { status: 'cached', volume: found.volume };
  if (found.state === 'bad' && !options.retryBad) return { status: 'bad', reason: found.record.reason, known: true };
  const result = await preprocessSource(source, preprocess);
  if (!result.ok) {
    await cache.recordBad(key, { path: source.path, reason: result.reason });
    return { status: 'bad', reason: result.reason, known: false };
  }
  const volume = await cache.writeWith(key, result.volume, codec);
  return found.state === 'corrupt' ? { status: 'built', volume, replacedCorrupt: found.reason } : { status: 'built', volume };
}

/** Preprocesses `source`, turning a user-level failure (bad or missing file) into a reason instead of a throw. */
export async function preprocessSource<P, T = Volume>(
  source: CacheSource<P>,
  preprocess: Preprocess<P, T>,
): Promise<{ readonly ok: true; readonly volume: T } | { readonly ok: false; readonly reason: string }> {
  try {
    return { ok: true, volume: await preprocess(source.path, source.preprocessing) };
  } catch (error) {
    if (!isBadSourceError(error)) throw error;
    return { ok: false, reason: describe(error, source.path) };
  }
}

const BAD_SOURCE_CODES = new Set(['ENOENT', 'EACCES', 'EISDIR', 'ENOTDIR', 'EPERM']);

function isBadSourceError(error: unknown): error is Error {
  return error instanceof UserError || BAD_SOURCE_CODES.has((error as NodeJS.ErrnoException)?.code ?? '');
}

/** The problem without the file name (reports put the name in front themselves). */
function describe(error: Error, path: string): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'file not found';
  if (code !== undefined && BAD_SOURCE_CODES.has(code)) return `cannot read (${code})`;
  return error.message.startsWith(`${path}: `) ? error.message.slice(path.length + 2) : error.message;
}
