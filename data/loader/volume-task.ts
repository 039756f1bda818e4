import { loadOrBuild, preprocessSource } from '../cache/load-or-build';
import { preprocessForCache } from '../cache/pipeline-task';
import { VolumeCache } from '../cache/store';
import { BatchBuilder, FetchResult } from './batch-builder';
import type { TaskConfig } from './protocol';

/** The batch builder of a loader: volumes come through the cache when there is one, else straight from the pipeline. */
export function createTaskBuilder(config: TaskConfig): BatchBuilder {
  const cache = config.cache && new VolumeCache(config.cache);
  const fetch = async (index: number): Promise<FetchResult> => {
    const source = { path: config.plan.paths[index], preprocessing: config.preprocessing[index] };
    if (!cache) return preprocessSource(source, preprocessForCache);
    const outcome = await loadOrBuild(cache, source, preprocessForCache);
    return outcome.status === 'bad' ? { ok: false, reason: outcome.reason } : { ok: true, volume: outcome.volume };
  };
  return new BatchBuilder(config.plan, fetch);
}
