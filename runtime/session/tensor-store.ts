/**
 * Named tensors the runtime owns between steps (parameters, state, optimizer moments), each one typed array held
 * as an ort.Tensor so that it is fed to sessions without copying and replaced by session outputs without copying.
 */
import * as ort from 'onnxruntime-node';
import { UserError } from '../../common/user-error';
import { DType } from '../../graph/core/dtype';
import { ConstantData } from '../../graph/core/graph';
import { formatShape, size } from '../../graph/core/shape';

export interface TensorDecl {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/** A value given for a named tensor that does not fit it (unknown name, wrong type or length). */
export class TensorValueError extends UserError {}

const ARRAY_OF: Partial<Record<DType, new (n: number) => ConstantData>> = {
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

/** Wraps `data` (not copied) as an ort.Tensor of `decl`'s dtype and shape, refusing a mismatch. */
export function toOrtTensor(decl: TensorDecl, data: ConstantData, what = 'tensor'): ort.Tensor {
  const Expected = ARRAY_OF[decl.dtype];
  if (!Expected || !(data instanceof Expected)) {
    throw new TensorValueError(`${what} ${decl.name}: expected ${decl.dtype} data (${Expected?.name ?? 'unsupported'}), got ${data.constructor.name}`);
  }
  if (data.length !== size(decl.shape)) {
    throw new TensorValueError(`${what} ${decl.name}: ${data.length} values for shape ${formatShape(decl.shape)}`);
  }
  return new ort.Tensor(decl.dtype as 'float32', data as Float32Array, [...decl.shape]);
}

/** Rows [from, to) of a tensor [rows, ...], as a view. */
export function rowSlice(t: ort.Tensor, from: number, to: number): ort.Tensor {
  const per = size(t.dims.slice(1));
  return new ort.Tensor(t.type as 'float32', (t.data as Float32Array).subarray(from * per, to * per), [to - from, ...t.dims.slice(1)]);
}

export class TensorStore {
  private readonly decls = new Map<string, TensorDecl>();
  private readonly values = new Map<string, ort.Tensor>();

  constructor(private readonly what: string) {}

  /** Adds a tensor with its first value. */
  declare(decl: TensorDecl, data: ConstantData): void {
    if (this.decls.has(decl.name)) throw new Error(`${this.what} ${decl.name} declared twice`);
    this.decls.set(decl.name, { name: decl.name, dtype: decl.dtype, shape: [...decl.shape] });
    this.values.set(decl.name, toOrtTensor(decl, data, this.what));
  }

  has(name: string): boolean {
    return this.decls.has(name);
  }

  names(): string[] {
    return [...this.decls.keys()];
  }

  decl(name: string): TensorDecl {
    const d = this.decls.get(name);
    if (!d) throw new TensorValueError(`unknown ${this.what} ${name}`);
    return d;
  }

  /** The current value (a view, not a copy: it is replaced, not modified, by later steps). */
  get(name: string): ConstantData {
    return this.tensor(name).data as ConstantData;
  }

  /** Replaces the value; `data` is used as is (not copied) from then on. */
  set(name: string, data: ConstantData): void {
    this.values.set(name, toOrtTensor(this.decl(name), data, this.what));
  }

  tensor(name: string): ort.Tensor {
    this.decl(name);
    return this.values.get(name)!;
  }

  /** Takes a session output as the new value, after checking that it has the declared type and shape. */
  adopt(name: string, value: ort.Tensor): void {
    const d = this.decl(name);
    if (value.type !== d.dtype || value.dims.length !== d.shape.length || value.dims.some((n, i) => n !== d.shape[i])) {
      throw new Error(`${this.what} ${name}: got ${value.type}[${value.dims.join(', ')}] for ${d.dtype}${formatShape(d.shape)}`);
    }
    this.values.set(name, value);
  }

  /** Every value as a plain map (views), e.g. for a checkpoint. */
  snapshot(): Map<string, ConstantData> {
    return new Map(this.names().map((n) => [n, this.get(n)]));
  }
}
