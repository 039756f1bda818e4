/**
 * The initialisers of an ONNX model file as weight tensors: what a self-contained exported model (such as
 * `encoder.onnx`) holds of the parameters baked into it, with bytes inside the message or in its external data.
 */
import * as path from 'path';
import { onnx } from 'onnx-proto';
import { WeightFileError } from '../../io/weights/errors';
import { withFile } from '../../io/weights/file-access';
import { TensorMap, WEIGHT_DTYPES, WeightDType, allocate, bytesPerElement, namedTensor, numel } from '../../io/weights/tensor-map';
import { dtypeFromOnnx } from '../core/dtype';

/** An initialiser whose bytes sit in an external-data file, with the bytes read back into the message. */
export function inlineExternal(dir: string, t: onnx.ITensorProto): onnx.ITensorProto {
  if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) return t;
  const info = Object.fromEntries((t.externalData ?? []).map((e) => [e.key, e.value]));
  const bytes = withFile(path.join(dir, String(info.location)), (f) => f.read(Number(info.offset ?? 0), Number(info.length)));
  if (!bytes) throw new WeightFileError(path.join(dir, String(info.location)), `too short for initialiser ${t.name}`);
  return { ...t, rawData: bytes, dataLocation: onnx.TensorProto.DataLocation.DEFAULT, externalData: [] };
}

/** Every initialiser of the model in `file`, in file order, under its ONNX name. */
export function readOnnxInitializers(file: string): TensorMap {
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(withFile(file, (f) => f.read(0, f.size)) ?? new Uint8Array());
  } catch (error) {
    if (error instanceof WeightFileError) throw error;
    throw new WeightFileError(file, `not an ONNX model (${(error as Error).message})`);
  }
  const out: TensorMap = new Map();
  for (const raw of model.graph?.initializer ?? []) {
    const t = inlineExternal(path.dirname(file), raw);
    const name = t.name ?? '';
    let dtype: WeightDType;
    try {
      dtype = dtypeFromOnnx(t.dataType ?? 0) as WeightDType;
    } catch {
      throw new WeightFileError(file, `initialiser ${name} has ONNX data type ${t.dataType}, which weight files do not hold`);
    }
    if (!WEIGHT_DTYPES.includes(dtype)) throw new WeightFileError(file, `initialiser ${name} is ${dtype}`);
    const shape = (t.dims ?? []).map(Number);
    out.set(name, namedTensor(name, dtype, shape, initializerData(file, name, dtype, numel(shape), t)));
  }
  return out;
}

function initializerData(file: string, name: string, dtype: WeightDType, count: number, t: onnx.ITensorProto) {
  const data = allocate(dtype, count);
  if (t.rawData && t.rawData.length) {
    if (t.rawData.length !== count * bytesPerElement(dtype)) {
      throw new WeightFileError(file, `initialiser ${name} holds ${t.rawData.length} bytes, ${count} ${dtype} elements need ${count * bytesPerElement(dtype)}`);
    }
    new Uint8Array(data.buffer).set(t.rawData);
    return data;
  }
  const typed: Partial<Record<WeightDType, ArrayLike<number | bigint | { toString(): string }> | null | undefined>> = {
    float32: t.floatData,
    float64: t.doubleData,
    int64: t.int64Data as ArrayLike<{ toString(): string }> | undefined,
    int32: t.int32Data,
  };
  const values = typed[dtype];
  if (!values || values.length !== count) throw new WeightFileError(file, `initialiser ${name} has no data for its ${count} elements`);
  for (let i = 0; i < count; i++) {
    const v = values[i];
    if (data instanceof BigInt64Array) data[i] = BigInt(v.toString());
    else (data as Float32Array)[i] = Number(v);
  }
  return data;
}
