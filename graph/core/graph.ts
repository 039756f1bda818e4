import { DType } from './dtype';
import { InitSpec } from './init';
import { Shape, ShapeError, formatShape } from './shape';

export type TensorRole = 'input' | 'parameter' | 'state' | 'constant' | 'computed';

export type ConstantData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

export type Attribute =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'ints'; value: readonly number[] }
  | { type: 'floats'; value: readonly number[] }
  | { type: 'string'; value: string }
  | { type: 'graph'; value: Body };

/**
 * A graph-valued attribute (the body of a Scan): nodes in a graph of its own, which reads tensors of the graph
 * around it through `capture`; `inputs` and `outputs` in the order the operator binds them.
 */
export interface Body {
  readonly graph: Graph;
  readonly inputs: readonly Tensor[];
  readonly outputs: readonly Tensor[];
}

export const attr = {
  int: (value: number): Attribute => ({ type: 'int', value }),
  float: (value: number): Attribute => ({ type: 'float', value }),
  ints: (value: readonly number[]): Attribute => ({ type: 'ints', value }),
  floats: (value: readonly number[]): Attribute => ({ type: 'floats', value }),
  string: (value: string): Attribute => ({ type: 'string', value }),
  graph: (value: Body): Attribute => ({ type: 'graph', value }),
};

/** The graphs of the graph-valued attributes among `attributes`. */
export function bodyGraphs(attributes: Readonly<Record<string, Attribute>>): Graph[] {
  return Object.values(attributes).flatMap((a) => (a.type === 'graph' ? [a.value.graph] : []));
}

/** The outer tensors a node's bodies read by name (ONNX's implicit inputs), which the node depends on as on its inputs. */
export function implicitInputs(node: Pick<Node, 'attributes'>): Tensor[] {
  return bodyGraphs(node.attributes).flatMap((b) => [...b.captures.values()]);
}

export interface OutputSpec {
  readonly dtype: DType;
  readonly shape: Shape;
}

export class Tensor {
  constructor(
    readonly graph: Graph,
    readonly id: number,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly role: TensorRole,
    readonly producer: Node | null = null,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.name}: ${this.dtype}${formatShape(this.shape)}`;
  }
}

export interface Node {
  readonly id: number;
  readonly name: string;
  readonly opType: string;
  /** `null` stands for an omitted optional input. */
  readonly inputs: readonly (Tensor | null)[];
  readonly outputs: readonly Tensor[];
  readonly attributes: Readonly<Record<string, Attribute>>;
  /** Set by `detach`: autodiff passes no gradient through this node. */
  readonly stopsGradient: boolean;
}

export interface ParameterInfo {
  readonly tensor: Tensor;
  readonly init: InitSpec;
  readonly trainable: boolean;
}

/**
 * A graph under construction: tensors with static shapes, the nodes that compute them in creation (hence
 * topological) order, and the named parameters, state and inputs they start from.
 */
export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Tensor[] = [];
  readonly parameters: ParameterInfo[] = [];
  readonly constants = new Map<Tensor, ConstantData>();
  /** In a body: its tensors that stand for tensors of the outer graph. */
  readonly captures = new Map<Tensor, Tensor>();
  private readonly scopes: string[] = [];
  private readonly usedNames = new Set<string>();
  private readonly scalarCache = new Map<string, Tensor>();
  private nextId = 0;

  /** `outer`: the graph whose node this graph is the body of. */
  constructor(readonly outer: Graph | null = null) {}

  /** Runs `build` with `name` appended to the scope, so parameters become `outer.name.param`. */
  scope<T>(name: string | number, build: () => T): T {
    this.scopes.push(String(name));
    try {
      return build();
    } finally {
      this.scopes.pop();
    }
  }

  scopedName(name: string): string {
    return [...this.scopes, name].join('.');
  }

  /** A batch input fed at run time. */
  input(name: string, dtype: DType, shape: Shape): Tensor {
    const t = this.newTensor(this.claim(name), dtype, shape, 'input', null);
    this.inputs.push(t);
    return t;
  }

  /** A named parameter (trainable) or state tensor (not trained), fed at run time and owned by the runtime. */
  parameter(name: string, dtype: DType, shape: Shape, init: InitSpec, trainable = true): Tensor {
    const full = this.claim(this.scopedName(name));
    const t = this.newTensor(full, dtype, shape, trainable ? 'parameter' : 'state', null);
    this.parameters.push({ tensor: t, init, trainable });
    return t;
  }

  /** In a body: the outer graph's tensor `t`, as a tensor of this graph. */
  capture(t: Tensor): Tensor {
    if (t.graph !== this.outer) throw new Error(`capture: ${t.name} is not a tensor of the graph around this body`);
    for (const [inner, outer] of this.captures) if (outer === t) return inner;
    const inner = this.newTensor(this.uniqueName('captured'), t.dtype, t.shape, 'input', null);
    this.captures.set(inner, t);
    return inner;
  }

  constant(data: ConstantData, dtype: DType, shape: Shape, name = 'const'): Tensor {
    const count = shape.reduce((a, b) => a * b, 1);
    if (data.length !== count) {
      throw new ShapeError(`constant ${name}: ${data.length} values for shape ${formatShape(shape)}`);
    }
    const t = this.newTensor(this.uniqueName(this.scopedName(name)), dtype, shape, 'constant', null);
    this.constants.set(t, data);
    return t;
  }

  /** A shared scalar (or broadcastable `[1]`-free rank-0) constant of the given dtype. */
  scalar(value: number, dtype: DType): Tensor {
    const key = `${dtype}:${Object.is(value, -0) ? '-0' : value}`;
    let t = this.scalarCache.get(key);
    if (!t) {
      t = this.constant(typedArrayOf(dtype, [value]), dtype, [], `scalar_${dtype}_${value}`);
      this.scalarCache.set(key, t);
    }
    return t;
  }

  /** Adds one operator node; the caller has inferred its output dtypes and shapes. */
  addNode(
    opType: string,
    inputs: readonly (Tensor | null)[],
    attributes: Record<string, Attribute>,
    outputs: readonly OutputSpec[],
    stopsGradient = false,
  ): Tensor[] {
    for (const t of [...inputs, ...implicitInputs({ attributes })]) {
      if (t && t.graph !== this) throw new Error(`${opType}: input ${t.name} belongs to another graph`);
    }
    if (bodyGraphs(attributes).some((b) => b.outer !== this)) throw new Error(`${opType}: its body is not a body of this graph`);
    const name = this.uniqueName(this.scopedName(opType));
    const outs: Tensor[] = [];
    const node: Node = { id: this.nextId++, name, opType, inputs, outputs: outs, attributes, stopsGradient };
    outputs.forEach((o, i) => {
      outs.push(this.newTensor(outputs.length === 1 ? name : `${name}.${i}`, o.dtype, o.shape, 'computed', node));
      this.usedNames.add(outs[i].name);
    });
    this.nodes.push(node);
    return outs;
  }

  private newTensor(name: string, dtype: DType, shape: Shape, role: TensorRole, producer: Node | null): Tensor {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new ShapeError(`${name}: invalid shape ${formatShape(shape)}`);
    }
    return new Tensor(this, this.nextId++, name, dtype, [...shape], role, producer);
  }

  private claim(name: string): string {
    if (this.usedNames.has(name)) throw new Error(`duplicate tensor name ${name}`);
    this.usedNames.add(name);
    return name;
  }

  private uniqueName(base: string): string {
    let name = base;
    for (let i = 1; this.usedNames.has(name); i++) name = `${base}_${i}`;
    this.usedNames.add(name);
    return name;
  }
}

export function typedArrayOf(dtype: DType, values: readonly number[]): ConstantData {
  switch (dtype) {
    case 'float32':
      return Float32Array.from(values);
    case 'float64':
      return Float64Array.from(values);
    case 'int64':
      return BigInt64Array.from(values.map((v) => BigInt(v)));
    case 'int32':
      return Int32Array.from(values);
    case 'uint8':
    case 'bool':
      return Uint8Array.from(values);
    case 'float16':
      throw new Error('float16 constants are not supported; build in float32 and Cast');
  }
}
