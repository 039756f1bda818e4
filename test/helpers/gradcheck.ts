import { DType } from '../../graph/core/dtype';
import { ConstantData, Graph, Tensor } from '../../graph/core/graph';
import { size } from '../../graph/core/shape';
import { gradients } from '../../graph/autodiff/backward';
import { mul } from '../../graph/ops/elementwise';
import { reduceSum } from '../../graph/ops/reduce';
import { reshape } from '../../graph/ops/shape';
import { Rng } from '../../common/rng';
import { cpuSession, runSession } from './ort';

export interface GradcheckInput {
  readonly shape: readonly number[];
  /** Values to start from; standard normal when omitted. */
  readonly values?: readonly number[];
  /** Inputs whose gradient is not checked (e.g. integer indices, masks). */
  readonly constant?: boolean;
  readonly dtype?: DType;
}

export interface GradcheckOptions {
  readonly dtype?: 'float32' | 'float64';
  readonly eps?: number;
  /** Largest allowed |analytic - numeric| / (|numeric| + atol) over the checked elements. */
  readonly rtol?: number;
  readonly atol?: number;
  /** At most this many elements of each input are perturbed (chosen at random). */
  readonly samples?: number;
  readonly seed?: number;
}

export interface GradcheckResult {
  readonly worst: number;
  readonly checked: number;
}

/**
 * Compares autodiff gradients of `f` with central finite differences. The scalar checked is
 * sum(f(inputs) * w) with a fixed random w, so every output element's gradient path is exercised.
 */
export async function gradcheck(
  inputs: readonly GradcheckInput[],
  f: (...xs: Tensor[]) => Tensor,
  options: GradcheckOptions = {},
): Promise<GradcheckResult> {
  const dtype = options.dtype ?? 'float64';
  const eps = options.eps ?? (dtype === 'float64' ? 1e-6 : 1e-2);
  const rtol = options.rtol ?? (dtype === 'float64' ? 1e-6 : 2e-2);
  const atol = options.atol ?? (dtype === 'float64' ? 1e-8 : 1e-3);
  const rng = new Rng(options.seed ?? 1);
  const g = new Graph();
  const xs = inputs.map((spec, i) => g.input(`x${i}`, spec.dtype ?? dtype, spec.shape));
  const y = f(...xs);
  const weights = Array.from({ length: size(y.shape) }, () => rng.normal());
  const w = g.constant(floatArray(dtype, weights), dtype, y.shape, 'w');
  const loss = reduceSum(reshape(mul(y, w), [size(y.shape)]), [0]);
  const wrt = xs.filter((_, i) => !inputs[i].constant);
  const grads = gradients(loss, wrt);

  const values: ConstantData[] = inputs.map((spec) => {
    const d = spec.dtype ?? dtype;
    const v = spec.values ?? Array.from({ length: size(spec.shape) }, () => rng.normal());
    return d === 'int64' ? BigInt64Array.from(v.map((n) => BigInt(n))) : floatArray(d as 'float32', v);
  });
  const lossSession = await cpuSession({ name: 'loss', inputs: xs, outputs: [{ name: 'loss', tensor: loss }] });
  const gradSession = await cpuSession({
    name: 'grads',
    inputs: xs,
    outputs: wrt.map((t) => ({ name: `${t.name}_grad`, tensor: grads.get(t)! })),
  });
  const feeds = () => new Map(xs.map((t, i) => [t, values[i]] as const));
  const analytic = await runSession(gradSession, feeds());

  let worst = 0;
  let checked = 0;
  for (const t of wrt) {
    const data = values[xs.indexOf(t)] as Float64Array;
    const count = data.length;
    const picks = count <= (options.samples ?? 24) ? [...Array(count).keys()] : Array.from({ length: options.samples ?? 24 }, () => rng.int(0, count - 1));
    for (const k of picks) {
      const original = data[k];
      data[k] = original + eps;
      const plus = (await runSession(lossSession, feeds())).loss[0];
      data[k] = original - eps;
      const minus = (await runSession(lossSession, feeds())).loss[0];
      data[k] = original;
      const numeric = (plus - minus) / (2 * eps);
      const exact = analytic[`${t.name}_grad`][k];
      const err = Math.abs(exact - numeric) / (Math.abs(numeric) + atol);
      if (!(err <= worst)) worst = Number.isNaN(err) ? Infinity : Math.max(worst, err);
      checked++;
    }
  }
  if (worst > rtol) throw new Error(`gradient check failed: worst relative error ${worst.toExponential(3)} > ${rtol}`);
  return { worst, checked };
}

function floatArray(dtype: 'float32' | 'float64', values: readonly number[]): Float32Array | Float64Array {
  return dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values);
}
