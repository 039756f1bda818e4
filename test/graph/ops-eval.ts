import { DType } from '../../graph/core/dtype';
import { Graph, Tensor, typedArrayOf } from '../../graph/core/graph';
import { Rng } from '../../common/rng';
import { cpuSession, runSession } from '../helpers/ort';

export interface EvalInput {
  readonly shape: readonly number[];
  readonly values: readonly number[];
  readonly dtype?: DType;
}

/** Runs `f` on the inputs through an ONNX Runtime CPU session; returns the output's values and static shape. */
export async function evaluate(
  inputs: readonly EvalInput[],
  f: (...xs: Tensor[]) => Tensor,
  dtype: DType = 'float64',
): Promise<{ values: number[]; shape: readonly number[] }> {
  const g = new Graph();
  const xs = inputs.map((spec, i) => g.input(`x${i}`, spec.dtype ?? dtype, spec.shape));
  const y = f(...xs);
  const session = await cpuSession({ name: 'evaluate', inputs: xs, outputs: [{ name: 'y', tensor: y }] });
  const out = await runSession(session, new Map(xs.map((t, i) => [t, typedArrayOf(t.dtype, inputs[i].values)] as const)));
  return { values: Array.from(out.y, Number), shape: y.shape };
}

/** `count` seeded values uniform in [lo, hi]: for inputs that must stay inside a domain (log, sqrt). */
export function uniformValues(count: number, lo: number, hi: number, seed = 7): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => lo + (hi - lo) * rng.uniform());
}

/** 0, 1, ..., count - 1. */
export const iota = (count: number): number[] => Array.from({ length: count }, (_, i) => i);
