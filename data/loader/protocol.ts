import type { CacheSettings } from '../cache/build';
import type { CacheSource } from '../cache/load-or-build';
import type { BatchPlan, BuiltBatch } from './batch-builder';
import type { DataCursor } from './schedule';

/** Everything a worker needs to build any batch on its own; it travels as `workerData` (structured clone). */
export interface TaskConfig {
  readonly plan: BatchPlan;
  /** Per source (as `plan.paths`): its preprocessing and companion files (a label map), the cache key's parts. */
  readonly sources: readonly Omit<CacheSource, 'path'>[];
  readonly cache?: CacheSettings;
}

export interface BuildRequest {
  readonly cursor: DataCursor;
}

export type BuildReply =
  | ({ readonly type: 'batch' } & BuiltBatch)
  | { readonly type: 'failure'; readonly step: number; readonly kind: 'bad-file' | 'no-usable-file'; readonly message: string };
