import * as ort from 'onnxruntime-node';
import { ConstantData, Tensor } from '../../graph/core/graph';
import { ModelSpec, buildModel, encodeModel } from '../../graph/onnx/model';

export type Feeds = ReadonlyMap<Tensor, ConstantData>;

/** A CPU session over the model of `spec`, with all graph optimisations on. */
export async function cpuSession(spec: ModelSpec): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(encodeModel(buildModel(spec)), {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: 1,
    // reject, rather than warn about, any disagreement between our static shapes and ONNX's inference
    extra: { session: { strict_shape_type_inference: '1' } },
  });
}

export async function runSession(session: ort.InferenceSession, feeds: Feeds): Promise<Record<string, Float64Array | Float32Array>> {
  const input: Record<string, ort.Tensor> = {};
  for (const [t, data] of feeds) input[t.name] = new ort.Tensor(t.dtype === 'float64' ? 'float64' : (t.dtype as 'float32'), data as Float32Array, [...t.shape]);
  const out = await session.run(input);
  const result: Record<string, Float64Array | Float32Array> = {};
  for (const [name, value] of Object.entries(out)) result[name] = value.data as Float64Array | Float32Array;
  return result;
}
