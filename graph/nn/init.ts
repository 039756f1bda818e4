import { Rng } from '../../common/rng';
import { DType } from '../core/dtype';
import { ConstantData, Graph, Tensor } from '../core/graph';
import { InitSpec } from '../core/init';
import { Shape, formatShape, size } from '../core/shape';

/**
 * PyTorch's default for Linear and Conv weights, kaiming_uniform_(a = sqrt(5)): a bound of
 * gain * sqrt(3 / fanIn) with gain = sqrt(2 / (1 + 5)), i.e. uniform(-1/sqrt(fanIn), 1/sqrt(fanIn)); their biases
 * use the same bound. fanIn is (input channels / groups) * kernel volume (for ConvTranspose: output channels
 * / groups * kernel volume, PyTorch reading it off weight.size(1)).
 */
export function fanInUniform(fanIn: number): InitSpec {
  const bound = 1 / Math.sqrt(fanIn);
  return { kind: 'uniform', low: -bound, high: bound };
}

/** Redraws beyond this many misses mean a truncation window far out in the tail: refuse rather than spin. */
const MAX_REDRAWS = 10000;

/** Draws the first value of a tensor described by `spec`, from `rng`. */
export function materialize(spec: InitSpec, shape: Shape, dtype: DType, rng: Rng): ConstantData {
  const count = size(shape);
  if (spec.kind === 'values') {
    if (spec.values.length !== count) throw new Error(`init values: ${spec.values.length} values for shape ${formatShape(shape)}`);
    return spec.values.slice();
  }
  const out = dtype === 'float64' ? new Float64Array(count) : dtype === 'float32' ? new Float32Array(count) : null;
  if (!out) throw new Error(`init ${spec.kind}: cannot draw ${dtype} values`);
  const draw = sampler(spec, rng);
  for (let i = 0; i < count; i++) out[i] = draw();
  return out;
}

function sampler(spec: Exclude<InitSpec, { kind: 'values' }>, rng: Rng): () => number {
  switch (spec.kind) {
    case 'zeros':
      return () => 0;
    case 'ones':
      return () => 1;
    case 'constant':
      return () => spec.value;
    case 'uniform':
      return () => spec.low + (spec.high - spec.low) * rng.uniform();
    case 'normal':
      return () => (spec.mean ?? 0) + spec.std * rng.normal();
    case 'truncated-normal': {
      const mean = spec.mean ?? 0;
      if (!(spec.a < spec.b)) throw new Error(`truncated-normal init: empty window [${spec.a}, ${spec.b}]`);
      return () => {
        for (let tries = 0; tries < MAX_REDRAWS; tries++) {
          const offset = spec.std * rng.normal();
          if (offset >= spec.a && offset <= spec.b) return mean + offset;
        }
        throw new Error(`truncated-normal init: window [${spec.a}, ${spec.b}] is too far out for std ${spec.std}`);
      };
    }
  }
}

/** First values of every parameter and state tensor of `graph`, drawn in creation order from `rng`. */
export function initialValues(graph: Graph, rng: Rng): Map<Tensor, ConstantData> {
  return new Map(graph.parameters.map((p) => [p.tensor, materialize(p.init, p.tensor.shape, p.tensor.dtype, rng)] as const));
}
