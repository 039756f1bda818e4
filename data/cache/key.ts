import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CACHE_FORMAT_VERSION } from './format';

/**
 * A source file as the cache sees it: a changed size or modification time makes a new entry, so a replaced file
 * is never served stale. (Absolute path, so the same file named two ways shares its entry.)
 */
export interface SourceIdentity {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
}

export async function sourceIdentity(path: string): Promise<SourceIdentity> {
  const absolute = resolve(path);
  const info = await stat(absolute);
  return { path: absolute, size: info.size, mtimeMs: info.mtimeMs };
}

/**
 * The entry key: sha256 over the source identity, the preprocessing parameters (any JSON value: family, spacing,
 * window, resize variant, the pipeline's code version), the identities of further files the entry is made from (a
 * label map) and the cache format version. Object keys are sorted so
 * that the key does not depend on the order in which the parameters were written.
 */
export function cacheKey(source: SourceIdentity, preprocessing: unknown, companions?: readonly SourceIdentity[]): string {
  const material = canonicalJson({ format: CACHE_FORMAT_VERSION, source, preprocessing, companions });
  return createHash('sha256').update(material).digest('hex');
}

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
