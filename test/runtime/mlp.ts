/** A small MLP regression problem built with the DSL, shared by the artifact and runtime tests. */
import { Rng } from '../../common/rng';
import { Graph, Tensor } from '../../graph/core/graph';
import { sub, mul, add } from '../../graph/ops/elementwise';
import { tanh } from '../../graph/ops/math';
import { reduceMean } from '../../graph/ops/reduce';
import { linear } from '../../graph/nn/linear';

export interface Mlp {
  readonly graph: Graph;
  readonly loss: Tensor;
  readonly hidden: Tensor;
  readonly prediction: Tensor;
}

export interface MlpShape {
  readonly batch: number;
  readonly inFeatures: number;
  readonly hidden: number;
  readonly outFeatures: number;
}

export const SMALL: MlpShape = { batch: 8, inFeatures: 3, hidden: 6, outFeatures: 2 };

/**
 * x -> fc1 -> tanh -> fc2 -> * scale + offset, mean squared error against `target`. `scale` is non-trained state
 * drawn from an InitSpec, `offset` non-trained state with build-time values.
 */
export function buildMlp(dtype: 'float32' | 'float64', s: MlpShape = SMALL): Mlp {
  const g = new Graph();
  const x = g.input('x', dtype, [s.batch, s.inFeatures]);
  const target = g.input('target', dtype, [s.batch, s.outFeatures]);
  const hidden = tanh(g.scope('fc1', () => linear(x, { inFeatures: s.inFeatures, outFeatures: s.hidden })));
  const raw = g.scope('fc2', () => linear(hidden, { inFeatures: s.hidden, outFeatures: s.outFeatures }));
  const scale = g.parameter('scale', dtype, [], { kind: 'constant', value: 1.5 }, false);
  const values = Array.from({ length: s.outFeatures }, (_, i) => 0.1 * (i + 1));
  const offset = g.parameter('offset', dtype, [s.outFeatures], { kind: 'values', values: dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values) }, false);
  const prediction = add(mul(raw, scale), offset);
  const error = sub(prediction, target);
  return { graph: g, loss: reduceMean(mul(error, error), [0, 1]), hidden, prediction };
}

/** A batch whose target is a fixed random linear map of x (reachable by the model up to tanh's curvature). */
export function regressionBatch(dtype: 'float32' | 'float64', s: MlpShape = SMALL, seed = 3): { x: Float32Array | Float64Array; target: Float32Array | Float64Array } {
  const rng = new Rng(seed);
  const array = (n: number) => (dtype === 'float64' ? new Float64Array(n) : new Float32Array(n));
  const x = array(s.batch * s.inFeatures).map(() => rng.normal());
  const w = Array.from({ length: s.inFeatures * s.outFeatures }, () => 0.5 * rng.normal());
  const target = array(s.batch * s.outFeatures);
  for (let b = 0; b < s.batch; b++)
    for (let o = 0; o < s.outFeatures; o++) {
      let v = 0;
      for (let i = 0; i < s.inFeatures; i++) v += x[b * s.inFeatures + i] * w[i * s.outFeatures + o];
      target[b * s.outFeatures + o] = v;
    }
  return { x, target };
}
