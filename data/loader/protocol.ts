import type { CacheSettings } from '../cache/build';
import type { PreprocessSpec } from '../cache/pipeline-task';
import type { BatchPlan, BuiltBatch } from './batch-builder';
import type { DataCursor } from './schedule';

/** Everything a worker needs to build any batch on its own; it travels as `workerData` (structured clone). */
export interface TaskConfig {
  readonly plan: BatchPlan;
  readonly preprocessing: readonly PreprocessSpec[];
  readonly cache?: CacheSettings;
}

export interface BuildRequest {
  readonly cursor: DataCursor;
}

export type BuildReply =
  | ({ readonly type: 'batch' } & BuiltBatch)
  | { readonly type: 'failure'; readonly step: number; readonly kind: 'bad-file' | 'no-usable-file'; readonly message: string };
