import { Rng } from '../../common/rng';
import { ConstantData, Graph, Tensor } from '../../graph/core/graph';
import { size } from '../../graph/core/shape';
import { gradients } from '../../graph/autodiff/backward';
import { mul } from '../../graph/ops/elementwise';
import { reduceSum } from '../../graph/ops/reduce';
import { reshape } from '../../graph/ops/shape';
import { materialize } from '../../graph/nn/init';
import { GradcheckOptions } from '../helpers/gradcheck';
import { cpuSession, runSession } from '../helpers/ort';

export interface ModuleInput {
  readonly shape: readonly number[];
  readonly values?: readonly number[];
  /** Fed but not checked (masks). */
  readonly constant?: boolean;
}

export interface ModuleCheckOptions extends GradcheckOptions {
  /** Feed the parameters their PyTorch initial values (as in training) instead of standard normal values. */
  readonly initialised?: boolean;
}

export interface ModuleCheck {
  readonly worst: number;
  /** Every checked tensor: the module's inputs `x0`, `x1`, ... and its trainable parameters by name. */
  readonly checked: readonly string[];
}

/** The defaults of test/helpers/gradcheck. */
const TOLERANCES = {
  float64: { eps: 1e-6, rtol: 1e-6, atol: 1e-8 },
  float32: { eps: 1e-2, rtol: 2e-2, atol: 1e-3 },
};

const definedOnly = (o: ModuleCheckOptions) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/**
 * Finite-difference check of a module: like test/helpers/gradcheck, but the module's own parameters (created by
 * `build` in the graph's scopes) are fed with standard normal (or their initial) values and checked along with
 * its inputs.
 * The scalar is sum(module(inputs) * r) with a fixed random r.
 */
export async function moduleGradcheck(
  inputs: readonly ModuleInput[],
  build: (...xs: Tensor[]) => Tensor,
  options: ModuleCheckOptions = {},
): Promise<ModuleCheck> {
  const dtype = options.dtype ?? 'float64';
  const { eps, rtol, atol } = { ...TOLERANCES[dtype], ...definedOnly(options) };
  const rng = new Rng(options.seed ?? 1);
  const float = (values: readonly number[]) => (dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values));
  const normals = (shape: readonly number[]) => Array.from({ length: size(shape) }, () => rng.normal());

  const g = new Graph();
  const xs = inputs.map((spec, i) => g.input(`x${i}`, dtype, spec.shape));
  const y = build(...xs);
  const params = g.parameters.filter((p) => p.trainable).map((p) => p.tensor);
  const fed = [...xs, ...params];
  const checked = [...xs.filter((_, i) => !inputs[i].constant), ...params];
  const r = g.constant(float(normals(y.shape)), dtype, y.shape, 'r');
  const loss = reduceSum(reshape(mul(y, r), [-1]), [0]);
  const grads = gradients(loss, checked);

  const values = new Map<Tensor, ConstantData>(xs.map((t, i) => [t, float(inputs[i].values ?? normals(t.shape))]));
  for (const p of g.parameters) {
    values.set(p.tensor, options.initialised ? materialize(p.init, p.tensor.shape, dtype, rng) : float(normals(p.tensor.shape)));
  }
  const lossSession = await cpuSession({ name: 'loss', inputs: fed, outputs: [{ name: 'loss', tensor: loss }] });
  const gradSession = await cpuSession({
    name: 'grads',
    inputs: fed,
    outputs: checked.map((t, i) => ({ name: `g${i}`, tensor: grads.get(t)! })),
  });
  const analytic = await runSession(gradSession, values);
  const lossAt = async () => (await runSession(lossSession, values)).loss[0];

  let worst = 0;
  for (const [i, t] of checked.entries()) {
    const data = values.get(t) as Float64Array | Float32Array;
    const samples = options.samples ?? 16;
    const picks = data.length <= samples ? [...data.keys()] : Array.from({ length: samples }, () => rng.int(0, data.length - 1));
    for (const k of picks) {
      const original = data[k];
      data[k] = original + eps;
      const plus = await lossAt();
      data[k] = original - eps;
      const minus = await lossAt();
      data[k] = original;
      // The step actually taken, after rounding to the dtype.
      const numeric = (plus - minus) / (dtype === 'float32' ? Math.fround(original + eps) - Math.fround(original - eps) : 2 * eps);
      const err = Math.abs(analytic[`g${i}`][k] - numeric) / (Math.abs(numeric) + atol);
      worst = Number.isNaN(err) ? Infinity : Math.max(worst, err);
      if (worst > rtol) throw new Error(`${t.name}[${k}]: autodiff ${analytic[`g${i}`][k]} vs finite difference ${numeric}`);
    }
  }
  return { worst, checked: checked.map((t) => t.name) };
}
