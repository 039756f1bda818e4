/**
 * Gradient accumulation (manifest `accumulation`): a step's rows through the training or eval model a few at a
 * time, the parts' outputs combined into what one run on all rows gives for a loss that is a mean of per-row terms.
 */
import * as ort from 'onnxruntime-node';
import { AccumulationEntry, IoEntry } from '../../graph/onnx/manifest';
import { rowSlice } from './tensor-store';

type Outputs = ort.InferenceSession.OnnxValueMapType;
type Numbers = Float32Array | Float64Array;

/**
 * Runs `runPart` once per part of the rows (`slice` cuts a batch tensor of all rows to the part's) and combines the
 * outputs: gradients and scalars are averaged, other outputs with a leading axis of one part's rows concatenated
 * along it, the rest averaged.
 */
export async function runAccumulated(
  entry: AccumulationEntry,
  outputs: readonly IoEntry[],
  runPart: (slice: (t: ort.Tensor) => ort.Tensor) => Promise<Outputs>,
): Promise<Outputs> {
  const parts = entry.rows / entry.rowsPerRun;
  const results: Outputs[] = [];
  for (let i = 0; i < parts; i++) {
    results.push(await runPart((t) => rowSlice(t, i * entry.rowsPerRun, (i + 1) * entry.rowsPerRun)));
  }
  const combined: Record<string, ort.Tensor> = {};
  for (const o of outputs) {
    const values = results.map((r) => r[o.name] as ort.Tensor);
    const perRow = o.role !== 'gradient' && o.shape.length > 0 && o.shape[0] === entry.rowsPerRun && values[0].data.length > 1;
    combined[o.name] = perRow ? concatRows(values) : mean(values);
  }
  return combined;
}

function mean(values: readonly ort.Tensor[]): ort.Tensor {
  // The first part's buffer is ours to keep: it becomes the sum.
  const sum = values[0].data as Numbers;
  for (const v of values.slice(1)) {
    const d = v.data as Numbers;
    for (let j = 0; j < d.length; j++) sum[j] += d[j];
  }
  for (let j = 0; j < sum.length; j++) sum[j] /= values.length;
  return values[0];
}

function concatRows(values: readonly ort.Tensor[]): ort.Tensor {
  const [first] = values;
  const Array = first.data.constructor as new (n: number) => Numbers;
  const all = new Array(first.data.length * values.length);
  values.forEach((v, i) => all.set(v.data as Numbers, i * first.data.length));
  return new ort.Tensor(first.type as 'float32', all as Float32Array, [first.dims[0] * values.length, ...first.dims.slice(1)]);
}
