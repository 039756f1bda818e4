import { UserError } from '../../common/user-error';
import type { Volume } from '../volume';
import { cacheKey, sourceIdentity } from './key';
import type { VolumeCache } from './store';

/** A source file and the preprocessing to apply to it (a JSON value: it is part of the cache key). */
export interface CacheSource<P = unknown> {
  readonly path: string;
  readonly preprocessing: P;
}

export type Preprocess<P> = (path: string, preprocessing: P) => Promise<Volume>;

export type Outcome =
  | { readonly status: 'cached'; readonly volume: Volume }
  | { readonly status: 'built'; readonly volume: Volume; readonly replacedCorrupt?: string }
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
export async function loadOrBuild<P>(
  cache: VolumeCache,
  source: CacheSource<P>,
  preprocess: Preprocess<P>,
  options: LoadOrBuildOptions = {},
): Promise<Outcome> {
  let key: string;
  try {
    key = cacheKey(await sourceIdentity(source.path), source.preprocessing);
  } catch (error) {
    if (isBadSourceError(error)) return { status: 'bad', reason: describe(error, source.path), known: false };
    throw error;
  }
  const found = await cache.lookup(key);
  if (found.state === 'hit') return { status: 'cached', volume: found.volume };
  if (found.state === 'bad' && !options.retryBad) return { status: 'bad', reason: found.record.reason, known: true };
  const result = await preprocessSource(source, preprocess);
  if (!result.ok) {
    await cache.recordBad(key, { path: source.path, reason: result.reason });
    return { status: 'bad', reason: result.reason, known: false };
  }
  const volume = await cache.write(key, result.volume);
  return found.state === 'corrupt' ? { status: 'built', volume, replacedCorrupt: found.reason } : { status: 'built', volume };
}

/** Preprocesses `source`, turning a user-level failure (bad or missing file) into a reason instead of a throw. */
export async function preprocessSource<P>(
  source: CacheSource<P>,
  preprocess: Preprocess<P>,
): Promise<{ readonly ok: true; readonly volume: Volume } | { readonly ok: false; readonly reason: string }> {
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
