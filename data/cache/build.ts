import { join } from 'node:path';
import { startWorker } from '../loader/thread';
import type { CacheCompression } from './format';
import { CacheSource, loadOrBuild, Outcome } from './load-or-build';
import { loadOrBuildPair, PairSpec } from './pair-task';
import { preprocessForCache, PreprocessSpec } from './pipeline-task';
import type { CacheDtype } from './quantize';
import { VolumeCache } from './store';

export interface CacheSettings {
  readonly dir: string;
  readonly dtype?: CacheDtype;
  readonly compression?: CacheCompression;
}

export interface Shard {
  /** 1-based, as in `--shard 2/4`. */
  readonly index: number;
  readonly count: number;
}

/** What happened to one source file. */
export interface BuildEvent {
  readonly path: string;
  readonly status: 'built' | 'cached' | 'bad';
  readonly reason?: string;
  /** Set when a damaged entry was found and rebuilt. */
  readonly replacedCorrupt?: string;
  /** A bad file already recorded by an earlier run (not tried again). */
  readonly known?: boolean;
}

export interface BuildSummary {
  readonly total: number;
  readonly built: number;
  readonly cached: number;
  readonly rebuiltCorrupt: number;
  readonly bad: readonly BuildEvent[];
}

/** What a cache build takes: volumes for pre-training (PreprocessSpec) or image/label pairs (pairSource). */
export type BuildSource = CacheSource<PreprocessSpec> | CacheSource<PairSpec>;

export interface CacheBuildOptions {
  readonly sources: readonly BuildSource[];
  readonly cache: CacheSettings;
  readonly shard?: Shard;
  /** Worker threads preprocessing at once (default 1); 0 works on the calling thread. */
  readonly workers?: number;
  /** Try again the files an earlier run recorded as bad. */
  readonly retryBad?: boolean;
  /** Called once with the number of source files this run (this shard) handles, before any is processed. */
  readonly onStart?: (total: number) => void;
  readonly onEvent?: (event: BuildEvent, done: number, total: number) => void;
}

export type BuildJob = { readonly index: number; readonly source: BuildSource };
export type BuildWorkerData = { readonly cache: CacheSettings; readonly retryBad: boolean };
export type BuildReply = { readonly index: number; readonly event: BuildEvent } | { readonly index: number; readonly error: string };

/** The shard's part of `items`: every count-th item starting at index - 1, in the given (stable) order. */
export function shardOf<T>(items: readonly T[], shard: Shard | undefined): T[] {
  if (!shard) return items.slice();
  return items.filter((_, i) => i % shard.count === shard.index - 1);
}

/** The same source listed twice (e.g. in two datasets, or with repeats) is built once. */
export function distinctSources<S extends CacheSource>(sources: readonly S[]): S[] {
  const seen = new Set<string>();
  return sources.filter((s) => {
    const id = JSON.stringify([s.path, s.preprocessing]);
    return seen.has(id) ? false : (seen.add(id), true);
  });
}

/** One source through the cache, reduced to what a report needs (the volume itself is dropped). */
export async function buildOne(cache: VolumeCache, source: BuildSource, retryBad: boolean): Promise<BuildEvent> {
  const outcome: Outcome<unknown> = isPairSource(source)
    ? await loadOrBuildPair(cache, source, { retryBad })
    : await loadOrBuild(cache, source, preprocessForCache, { retryBad });
  if (outcome.status === 'bad') return { path: source.path, status: 'bad', reason: outcome.reason, known: outcome.known };
  if (outcome.status === 'built' && outcome.replacedCorrupt !== undefined) {
    return { path: source.path, status: 'built', replacedCorrupt: outcome.replacedCorrupt };
  }
  return { path: source.path, status: outcome.status };
}

/**
 * Fills the cache with the preprocessed volume of every source of the shard. Entries already valid are skipped,
 * damaged ones rebuilt, bad files recorded; an interrupted build simply continues when run again.
 */
export async function buildCache(options: CacheBuildOptions): Promise<BuildSummary> {
  const todo = shardOf(distinctSources(options.sources), options.shard);
  options.onStart?.(todo.length);
  const events: BuildEvent[] = [];
  const record = (event: BuildEvent): void => {
    events.push(event);
    options.onEvent?.(event, events.length, todo.length);
  };
  const workers = Math.min(options.workers ?? 1, todo.length);
  if (workers <= 0) {
    const cache = new VolumeCache(options.cache);
    for (const source of todo) record(await buildOne(cache, source, options.retryBad ?? false));
  } else {
    await buildInWorkers(todo, { cache: options.cache, retryBad: options.retryBad ?? false }, workers, record);
  }
  return {
    total: todo.length,
    built: events.filter((e) => e.status === 'built').length,
    cached: events.filter((e) => e.status === 'cached').length,
    rebuiltCorrupt: events.filter((e) => e.replacedCorrupt !== undefined).length,
    bad: events.filter((e) => e.status === 'bad'),
  };
}

function isPairSource(source: BuildSource): source is CacheSource<PairSpec> {
  return (source.preprocessing as Partial<PairSpec>).task === 'segmentation';
}

async function buildInWorkers(
  todo: readonly BuildSource[],
  data: BuildWorkerData,
  count: number,
  record: (event: BuildEvent) => void,
): Promise<void> {
  const pool = Array.from({ length: count }, () => startWorker(join(__dirname, 'build-worker'), data));
  let next = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      let finished = 0;
      const feed = (worker: (typeof pool)[number]): void => {
        if (next < todo.length) {
          const job: BuildJob = { index: next, source: todo[next] };
          next++;
          worker.postMessage(job);
        } else if (++finished === pool.length) {
          resolve();
        }
      };
      for (const worker of pool) {
        worker.on('message', (reply: BuildReply) => {
          if ('error' in reply) return reject(new Error(`building the cache entry of ${todo[reply.index].path} failed: ${reply.error}`));
          record(reply.event);
          feed(worker);
        });
        worker.on('error', (error) => reject(new Error(`cache build worker crashed: ${error.message}`)));
        worker.on('exit', (code) => reject(new Error(`cache build worker exited unexpectedly (exit code ${code})`)));
        feed(worker);
      }
    });
  } finally {
    for (const worker of pool) worker.removeAllListeners('exit');
    await Promise.all(pool.map((worker) => worker.terminate()));
  }
}
