import { DType } from '../../graph/core/dtype';
import { ConstantData, Graph, Tensor } from '../../graph/core/graph';
import { size } from '../../graph/core/shape';
import { gradients } from '../../graph/autodiff/backward';
import { GradientTable } from '../../graph/autodiff/rule';
import { materialize } from '../../graph/nn/init';
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
  /** At most this many elements of each checked tensor are perturbed (chosen at random). */
  readonly samples?: number;
  readonly seed?: number;
  /** Feed the parameters `f` creates their PyTorch initial values (as in training) instead of standard normal ones. */
  readonly initialised?: boolean;
  /** Gradient rules to differentiate with (default: the project's). */
  readonly rules?: GradientTable;
}

export interface GradcheckResult {
  readonly worst: number;
  /** Elements perturbed in all. */
  readonly checked: number;
  /** The tensors checked: the inputs `x0`, `x1`, ... then the trainable parameters `f` created, by name. */
  readonly tensors: readonly string[];
}

const TOLERANCES = {
  float64: { eps: 1e-6, rtol: 1e-6, atol: 1e-8 },
  float32: { eps: 1e-2, rtol: 2e-2, atol: 1e-3 },
};

/**
 * Compares autodiff gradients of `f` with central finite differences, through real ONNX Runtime CPU sessions.
 * The scalar checked is sum(f(inputs) * w) with a fixed random w, so every output element's gradient path is
 * exercised. Parameters that `f` creates (modules) are fed and checked along with the inputs.
 */
export async function gradcheck(
  inputs: readonly GradcheckInput[],
  f: (...xs: Tensor[]) => Tensor,
  options: GradcheckOptions = {},
): Promise<GradcheckResult> {
  const dtype = options.dtype ?? 'float64';
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const { eps, rtol, atol } = { ...TOLERANCES[dtype], ...defined };
  const rng = new Rng(options.seed ?? 1);
  const typed = (d: DType, values: readonly number[]): ConstantData =>
    d === 'int64' ? BigInt64Array.from(values.map((n) => BigInt(n))) : d === 'float32' ? Float32Array.from(values) : Float64Array.from(values);
  const float = (values: readonly number[]) => typed(dtype, values);
  const normals = (shape: readonly number[]) => Array.from({ length: size(shape) }, () => rng.normal());

  const g = new Graph();
  const xs = inputs.map((spec, i) => g.input(`x${i}`, spec.dtype ?? dtype, spec.shape));
  const y = f(...xs);
  const params = g.parameters.filter((p) => p.trainable).map((p) => p.tensor);
  const fed = [...xs, ...params];
  const checked = [...xs.filter((_, i) => !inputs[i].constant), ...params];
  const w = g.constant(float(normals(y.shape)), dtype, y.shape, 'w');
  const loss = reduceSum(reshape(mul(y, w), [size(y.shape)]), [0]);
  const grads = gradients(loss, checked, options.rules);

  const values = new Map<Tensor, ConstantData>();
  xs.forEach((t, i) => {
    values.set(t, typed(t.dtype, inputs[i].values ?? normals(t.shape)));
  });
  for (const p of g.parameters) {
    values.set(p.tensor, options.initialised ? materialize(p.init, p.tensor.shape, dtype, rng) : float(normals(p.tensor.shape)));
  }
  const lossSession = await cpuSession({ name: 'loss', inputs: fed, outputs: [{ name: 'loss', tensor: loss }] });
  const gradSession = await cpuSession({ name: 'grads', inputs: fed, outputs: checked.map((t, i) => ({ name: `g${i}`, tensor: grads.get(t)! })) });
  const analytic = await runSession(gradSession, values);
  const lossAt = async () => (await runSession(lossSession, values)).loss[0];

  let worst = 0;
  let where = '';
  let count = 0;
  const samples = options.samples ?? 24;
  for (const [i, t] of checked.entries()) {
    const data = values.get(t) as Float64Array | Float32Array;
    const picks = data.length <= samples ? [...data.keys()] : Array.from({ length: samples }, () => rng.int(0, data.length - 1));
    for (const k of picks) {
      const original = data[k];
      data[k] = original + eps;
      const plus = await lossAt();
      data[k] = original - eps;
      const minus = await lossAt();
      data[k] = original;
      // The step actually taken, after rounding to the dtype.
      const step = t.dtype === 'float32' ? Math.fround(original + eps) - Math.fround(original - eps) : 2 * eps;
      const numeric = (plus - minus) / step;
      const exact = analytic[`g${i}`][k];
      const err = Math.abs(exact - numeric) / (Math.abs(numeric) + atol);
      if (!(err <= worst)) {
        worst = Number.isNaN(err) ? Infinity : err;
        where = `${t.name}[${k}]: autodiff ${exact} vs finite difference ${numeric}`;
      }
      count++;
    }
  }
  if (worst > rtol) throw new Error(`gradient check failed: worst relative error ${worst.toExponential(3)} > ${rtol} at ${where}`);
  return { worst, checked: count, tensors: checked.map((t) => t.name) };
}
