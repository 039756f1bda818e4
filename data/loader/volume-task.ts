import type { CachedPair } from '../cache/format';
import { loadOrBuild, preprocessSource, type CacheSource, type Outcome } from '../cache/load-or-build';
import { loadOrBuildPair, preprocessPairForCache, type PairSpec } from '../cache/pair-task';
import { preprocessForCache, type PreprocessSpec } from '../cache/pipeline-task';
import { VolumeCache } from '../cache/store';
import type { Volume } from '../volume';
import { BatchBuilder, FetchResult } from './batch-builder';
import { batchKindOps, type BatchKindOps } from './batch-kinds';
import type { TaskConfig } from './protocol';

/**
 * The batch builder of a loader: sources come through the cache when there is one, else straight from the
 * pipeline (VoCo: a volume; segmentation: an image/label pair).
 */
export function createTaskBuilder(config: TaskConfig): BatchBuilder<Volume> | BatchBuilder<CachedPair> {
  const cache = config.cache && new VolumeCache(config.cache);
  const source = <P>(index: number) => ({ path: config.plan.paths[index], ...config.sources[index] }) as CacheSource<P>;
  const result = <T>(outcome: Outcome<T>): FetchResult<T> => (outcome.status === 'bad' ? { ok: false, reason: outcome.reason } : { ok: true, volume: outcome.volume });
  if (config.plan.kind.kind === 'voco') {
    const fetch = async (index: number): Promise<FetchResult<Volume>> => {
      const s = source<PreprocessSpec>(index);
      return cache ? result(await loadOrBuild(cache, s, preprocessForCache)) : preprocessSource(s, preprocessForCache);
    };
    return new BatchBuilder(config.plan, batchKindOps(config.plan.kind) as BatchKindOps<Volume>, fetch);
  }
  const fetch = async (index: number): Promise<FetchResult<CachedPair>> => {
    const s = source<PairSpec>(index);
    return cache ? result(await loadOrBuildPair(cache, s)) : preprocessSource(s, preprocessPairForCache);
  };
  return new BatchBuilder(config.plan, batchKindOps(config.plan.kind) as BatchKindOps<CachedPair>, fetch);
}
