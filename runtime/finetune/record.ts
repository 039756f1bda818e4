/**
 * What applying a fine-tuning run's weights needs besides them: the preprocessing its volumes went through (the
 * abdomen chain at the run's `spacing`) and its class names (the built-in phantoms' organs, or the datalist's
 * `labels` table). Read from the run's config, which every checkpoint holds, and written into its segmenter.onnx,
 * so that a deployed file segments as the run trained without the run's datalist.
 */
import * as fs from 'node:fs';
import { readDatalistClassNames } from '../../data/datalist';
import type { OrganName } from '../../data/phantom/organs';
import type { Family } from '../../data/pipeline';
import { isSpacing, SegmenterPreprocessing, SegmenterRecord } from '../../graph/models/swinunetr/segmenter-file';
import { FinetuneConfigError, type FinetuneConfig } from './config';
import { chainParams, FINETUNE_FAMILY, phantomClassNames } from './data';

export interface RunRecord extends SegmenterRecord {
  readonly preprocessing: SegmenterPreprocessing & { readonly family: Family };
}

/** The fields of a run's config the record comes from. */
export type RecordedConfig = Pick<FinetuneConfig, 'spacing' | 'data' | 'phantomOrgans'>;

/**
 * The record of a run of `config`. `classNames` are the run's own when it knows them; otherwise they come from the
 * config: the phantoms' table, or the datalist's `labels` when the file is still there and has one.
 */
export function runRecord(config: RecordedConfig, classNames?: readonly string[]): RunRecord {
  const names = classNames ? new Map(classNames.map((name, i) => [i, name])) : configClassNames(config);
  return { preprocessing: { family: FINETUNE_FAMILY, spacing: chainParams(config.spacing).pixdim }, ...(names ? { classNames: names } : {}) };
}

/**
 * The config of a fine-tuning checkpoint as read from its file (`source` names it in errors): its spacing must be
 * three sizes in mm when present, as a run would not have started otherwise.
 */
export function savedRecordedConfig(config: Record<string, unknown>, source: string): RecordedConfig {
  const { spacing, data, phantomOrgans } = config;
  if (spacing !== undefined && !isSpacing(spacing)) throw new FinetuneConfigError(`${source}: config.spacing is ${JSON.stringify(spacing)}, not three voxel sizes in mm > 0`);
  return {
    ...(spacing !== undefined ? { spacing } : {}),
    ...(typeof data === 'string' ? { data } : {}),
    ...(Array.isArray(phantomOrgans) ? { phantomOrgans: phantomOrgans as OrganName[] } : {}),
  };
}

function configClassNames(config: RecordedConfig): ReadonlyMap<number, string> | undefined {
  if (config.data === undefined) return phantomClassNames(config.phantomOrgans);
  if (!fs.existsSync(config.data)) return undefined;
  try {
    return readDatalistClassNames(config.data);
  } catch {
    return undefined; // names only label the pictures; "class N" serves without them
  }
}
