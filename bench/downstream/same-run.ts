/**
 * The downstream benchmark's check that a fine-tuning run from the upstream-format `.pt` is the run from the
 * pre-training logdir: the imports load the same tensors with the same values, and the runs log the same numbers.
 */
import type { SwinUnetrOptions } from '../../graph/models/swinunetr/options';
import { importSwinUnetrWeights, WeightReport } from '../../graph/models/swinunetr/weights';
import { MetricsLog } from '../../runtime/observe/metrics-log';

/** metrics.jsonl fields that time a step rather than compute it. */
const TIMING_KEYS = new Set(['seconds', 'data_wait', 'allreduce']);

export interface Comparison {
  readonly same: boolean;
  /** What was compared, in words. */
  readonly what: string;
  /** The first difference, when there is one. */
  readonly difference?: string;
}

export interface ImportComparison extends Comparison {
  readonly reports: readonly [WeightReport, WeightReport];
}

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Imports both sources as `voco finetune --init-from` does (same model, same seed) and compares what they load. */
export function compareImports(a: string, b: string, model: SwinUnetrOptions, seed: number): ImportComparison {
  const [x, y] = [a, b].map((source) => importSwinUnetrWeights(source, model, { seed }));
  const reports = [x.report, y.report] as const;
  const names = (r: WeightReport) => [...r.loaded].sort().join(',');
  let difference: string | undefined;
  if (names(x.report) !== names(y.report)) difference = `they load other parameters (${x.report.loaded.length} and ${y.report.loaded.length})`;
  else if (x.report.fresh.join(',') !== y.report.fresh.join(',')) difference = 'they leave other parameters fresh';
  else {
    const name = [...x.values.keys()].find((n) => !bytes(x.values.get(n)!).equals(bytes(y.values.get(n)!)));
    if (name !== undefined) difference = `${name} differs`;
  }
  const what = `${x.report.loaded.length} loaded and ${x.report.fresh.length} fresh parameters`;
  return { same: difference === undefined, what, reports, ...(difference ? { difference } : {}) };
}

/** Compares two runs' metrics.jsonl record by record, timings left out. */
export function compareMetrics(a: string, b: string): Comparison {
  const strip = (r: Readonly<Record<string, unknown>>) => JSON.stringify(Object.fromEntries(Object.entries(r).filter(([k]) => !TIMING_KEYS.has(k))));
  const [x, y] = [a, b].map((logdir) => new MetricsLog(logdir).read().map(strip));
  const what = `${x.length} metrics.jsonl records (losses, learning rate, validation Dice)`;
  if (x.length !== y.length) return { same: false, what, difference: `${x.length} records against ${y.length}` };
  const i = x.findIndex((r, k) => r !== y[k]);
  return i < 0 ? { same: true, what } : { same: false, what, difference: `record ${i + 1}: ${x[i]} against ${y[i]}` };
}
