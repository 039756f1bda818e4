import { onnx } from 'onnx-proto';
import { ONNX_DTYPE } from '../core/dtype';
import { Attribute, Body, ConstantData, Node, Tensor, bodyGraphs, implicitInputs } from '../core/graph';

import { ATTENTION_OPSET } from '../ops/attention';
import { BatchPlan, SymbolicBatch, batchedLeadingDim, planSymbolicBatch } from './symbolic-batch';

/** The default-domain opset of a model without Attention nodes; with one, ATTENTION_OPSET. */
export const OPSET_VERSION = 17;
export const IR_VERSION = 8;
/** Opset 23 needs IR version 11. */
const IR_VERSION_ATTENTION = 11;

/** The opset a model of these nodes (and the nodes of their bodies) is emitted at: the lowest that has all of them. */
export function modelOpset(nodes: readonly Node[]): number {
  const hasAttention = (n: Node): boolean => n.opType === 'Attention' || bodyGraphs(n.attributes).some((b) => b.nodes.some(hasAttention));
  return nodes.some(hasAttention) ? ATTENTION_OPSET : OPSET_VERSION;
}

/** Reductions whose `axes` is an attribute up to opset 17 and an input from opset 18 on. */
const AXES_INPUT_FROM_18 = new Set(['ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSumExp', 'ReduceSumSquare']);

/**
 * At opset 18 and later, moves a reduction's `axes` attribute (the opset-17 form our builders emit) to an int64
 * initializer input, returned; the node is changed in place.
 */
function axesAsInput(node: onnx.INodeProto): onnx.ITensorProto[] {
  const axes = node.attribute?.find((a) => a.name === 'axes');
  if (!AXES_INPUT_FROM_18.has(node.opType ?? '') || !axes) return [];
  const name = `${node.name}.axes`;
  node.attribute = node.attribute!.filter((a) => a !== axes);
  node.input = [...node.input!, name];
  const values = BigInt64Array.from((axes.ints ?? []).map((i) => BigInt(i.toString())));
  return [tensorProto(name, 'int64', [values.length], values)];
}

export interface ModelOutput {
  readonly name: string;
  readonly tensor: Tensor;
}

export interface ModelSpec {
  readonly name: string;
  /**
   * Tensors fed at run time, in this order. A computed tensor among them is read instead of computed: the model
   * leaves out the nodes only it needed (e.g. a backward model fed what its forward pieces already computed).
   */
  readonly inputs: readonly Tensor[];
  readonly outputs: readonly ModelOutput[];
  /** Inputs baked into the model as initialisers instead (e.g. the weights of a self-contained encoder). */
  readonly weights?: ReadonlyMap<Tensor, ConstantData>;
  readonly docString?: string;
  /** ONNX metadata_props: facts a reader of the file needs beyond its graph (e.g. class names). */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Inputs whose leading axis the file leaves symbolic (graph/onnx/symbolic-batch.ts). */
  readonly symbolicBatch?: SymbolicBatch;
}

export class ModelSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelSpecError';
  }
}

/**
 * Builds the ONNX ModelProto computing `spec.outputs` from `spec.inputs`: only the nodes they need, every
 * intermediate's shape recorded as value_info (so ONNX Runtime's shape inference cross-checks ours), its leading
 * dimension symbolic where it depends on a `symbolicBatch` input.
 */
export function buildModel(spec: ModelSpec): onnx.ModelProto {
  const fed = new Set(spec.inputs);
  const nodes = neededNodes(spec.outputs.map((o) => o.tensor), fed);
  const weights = spec.weights ?? new Map<Tensor, ConstantData>();
  const graph = spec.outputs[0]?.tensor.graph;
  if (!graph) throw new ModelSpecError(`model ${spec.name} has no outputs`);
  const values = (t: Tensor | null) => Array.from(t ? graph.constants.get(t) ?? [] : [], Number);
  const plan = spec.symbolicBatch && planSymbolicBatch(nodes, spec.symbolicBatch, values);

  // A Reshape whose leading size the plan leaves to run time reads its own shape initializer instead.
  const reads = (node: Node) => (plan?.shapes.has(node) ? node.inputs.filter((_, i) => i !== 1) : node.inputs);
  const refed = nodes.flatMap((n) => n.outputs).find((t) => fed.has(t));
  if (refed) throw new ModelSpecError(`model ${spec.name}: input ${refed.name} is also computed by a node the outputs need`);
  const used = new Set<Tensor>();
  for (const node of nodes) for (const t of [...reads(node), ...implicitInputs(node)]) if (t && !t.producer) used.add(t);
  for (const o of spec.outputs) if (!o.tensor.producer) used.add(o.tensor);

  const initializers: onnx.ITensorProto[] = [];
  for (const t of used) {
    const constant = graph.constants.get(t) ?? weights.get(t);
    if (constant) initializers.push(tensorProto(t.name, t.dtype, t.shape, constant));
    else if (!fed.has(t)) throw new ModelSpecError(`model ${spec.name}: ${t.name} is needed but is neither an input nor a constant`);
  }

  // A computed tensor is emitted under its (first) output name rather than through an Identity: ONNX Runtime
  // 1.30's basic optimisations break a graph whose output Identity reads a tensor that other nodes also read.
  const emittedName = new Map<Tensor, string>();
  const outputNames = new Set<string>();
  const extraIdentities: onnx.INodeProto[] = [];
  const outputs = spec.outputs.map((o) => {
    if (outputNames.has(o.name)) throw new ModelSpecError(`model ${spec.name}: output ${o.name} appears twice`);
    outputNames.add(o.name);
    if (o.tensor.producer && !emittedName.has(o.tensor)) emittedName.set(o.tensor, o.name);
    else if (o.name !== (emittedName.get(o.tensor) ?? o.tensor.name)) {
      extraIdentities.push({ opType: 'Identity', name: `output.${o.name}`, input: [emittedName.get(o.tensor) ?? o.tensor.name], output: [o.name] });
    }
    return valueInfo(o.name, o.tensor, plan);
  });
  const nameOf = (t: Tensor): string => emittedName.get(t) ?? t.name;

  const intermediate = nodes.flatMap((n) => n.outputs).filter((t) => !emittedName.has(t));
  const opset = modelOpset(nodes);
  const emitted = nodes.map((n) => nodeProto(n, nameOf, opset));
  if (opset >= 18) initializers.push(...emitted.flatMap(axesAsInput));
  if (plan) initializers.push(...runTimeShapes(nodes, emitted, plan));
  return onnx.ModelProto.create({
    irVersion: opset >= ATTENTION_OPSET ? IR_VERSION_ATTENTION : IR_VERSION,
    opsetImport: [{ domain: '', version: opset }],
    producerName: 'voco-onnx',
    docString: spec.docString,
    metadataProps: Object.entries(spec.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: spec.name,
      node: [...emitted, ...extraIdentities],
      input: spec.inputs.filter((t) => !weights.has(t)).map((t) => valueInfo(t.name, t, plan)),
      output: outputs,
      initializer: initializers,
      valueInfo: intermediate.map((t) => valueInfo(t.name, t, plan)),
    },
  });
}

export function encodeModel(model: onnx.ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** What a node reads: its inputs and its bodies' captures. */
const dependencies = (node: Node): (Tensor | null)[] => [...node.inputs, ...implicitInputs(node)];

function neededNodes(targets: readonly Tensor[], fed: ReadonlySet<Tensor>): Node[] {
  const needed = new Set<Node>();
  const stack = [...targets];
  while (stack.length) {
    const t = stack.pop()!;
    const node = t.producer;
    if (!node || fed.has(t) || needed.has(node)) continue;
    needed.add(node);
    for (const input of dependencies(node)) if (input) stack.push(input);
  }
  return leavesLast([...needed].sort((a, b) => a.id - b.id));
}

/**
 * Moves the nodes whose outputs nothing reads (the gradients and other outputs) to the end, the earliest-built
 * last. ONNX Runtime schedules by a depth-first walk back from those nodes, the last one first, emitting each one's
 * whole cone of inputs before the next: in build order, each gradient is emitted as soon as the backward pass
 * reaches it. Otherwise the first walk (from the gradient built last) covers the whole backward data path and
 * defers every side branch, such as the relative-position-bias gradients, keeping their large [.., n, n] inputs
 * alive to the end of the step (2.2 GiB more at peak in a tiny VoCo step at roi 64).
 */
function leavesLast(nodes: readonly Node[]): Node[] {
  const read = new Set<Tensor>();
  for (const n of nodes) for (const t of dependencies(n)) if (t) read.add(t);
  const isLeaf = (n: Node) => n.outputs.every((t) => !read.has(t));
  return [...nodes.filter((n) => !isLeaf(n)), ...nodes.filter(isLeaf).reverse()];
}

/** `prefix`: put before the node's name (a body's nodes carry their Scan node's name). */
function nodeProto(node: Node, nameOf: (t: Tensor) => string, opset: number, prefix = ''): onnx.INodeProto {
  const name = prefix + node.name;
  return {
    name,
    opType: node.opType,
    input: node.inputs.map((t) => (t ? nameOf(t) : '')),
    output: node.outputs.map(nameOf),
    attribute: Object.entries(node.attributes).map(([key, a]) => attributeProto(key, a, (body) => bodyProto(body, `${name}/`, nameOf, opset))),
  };
}

/**
 * A body as a GraphProto: its tensors named `prefix` + their name (so that they cannot shadow the outer graph's),
 * its captures under the outer names, its constants as its own initializers.
 */
function bodyProto(body: Body, prefix: string, outerName: (t: Tensor) => string, opset: number): onnx.IGraphProto {
  const { graph } = body;
  const nameOf = (t: Tensor): string => {
    const outer = graph.captures.get(t);
    return outer ? outerName(outer) : prefix + t.name;
  };
  const nodes = neededNodes(body.outputs, new Set([...body.inputs, ...graph.captures.keys()]));
  const initializers = [...new Set(nodes.flatMap((n) => n.inputs))]
    .filter((t): t is Tensor => t !== null && graph.constants.has(t))
    .map((t) => tensorProto(nameOf(t), t.dtype, t.shape, graph.constants.get(t)!));
  const emitted = nodes.map((n) => nodeProto(n, nameOf, opset, prefix));
  if (opset >= 18) initializers.push(...emitted.flatMap(axesAsInput));
  // A body output must be a name its nodes produce, once: others (a state passed through) go through an Identity.
  const produced = new Set(nodes.flatMap((n) => n.outputs));
  const seen = new Set<Tensor>();
  const outputs = body.outputs.map((t, i) => {
    if (produced.has(t) && !seen.has(t)) {
      seen.add(t);
      return valueInfo(nameOf(t), t);
    }
    const name = `${prefix}output${i}`;
    emitted.push({ opType: 'Identity', name, input: [nameOf(t)], output: [name] });
    return valueInfo(name, t);
  });
  return {
    name: prefix.slice(0, -1),
    node: emitted,
    input: body.inputs.map((t) => valueInfo(nameOf(t), t)),
    output: outputs,
    initializer: initializers,
    valueInfo: nodes.flatMap((n) => n.outputs).filter((t) => !seen.has(t)).map((t) => valueInfo(nameOf(t), t)),
  };
}

function attributeProto(name: string, a: Attribute, graphProto: (body: Body) => onnx.IGraphProto): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case 'graph':
      return { name, type: T.GRAPH, g: graphProto(a.value) };
    case 'int':
      return { name, type: T.INT, i: a.value };
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
    case 'ints':
      return { name, type: T.INTS, ints: [...a.value] };
    case 'floats':
      return { name, type: T.FLOATS, floats: [...a.value] };
    case 'string':
      return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
  }
}

/** The shape inputs of the plan's Reshape nodes, as initialisers `<node>.shape`; the nodes are changed in place. */
function runTimeShapes(nodes: readonly Node[], emitted: onnx.INodeProto[], plan: BatchPlan): onnx.ITensorProto[] {
  return nodes.flatMap((node, i) => {
    const shape = plan.shapes.get(node);
    if (!shape) return [];
    const name = `${node.name}.shape`;
    emitted[i].input![1] = name;
    return [tensorProto(name, 'int64', [shape.length], BigInt64Array.from(shape.map(BigInt)))];
  });
}

function valueInfo(name: string, t: Tensor, plan?: BatchPlan): onnx.IValueInfoProto {
  const leading = plan && batchedLeadingDim(plan, t);
  const dim = t.shape.map((d, i): onnx.TensorShapeProto.IDimension => (i === 0 && leading ? leading : { dimValue: d }));
  return { name, type: { tensorType: { elemType: ONNX_DTYPE[t.dtype], shape: { dim } } } };
}

export function tensorProto(name: string, dtype: Tensor['dtype'], shape: readonly number[], data: ConstantData): onnx.ITensorProto {
  return {
    name,
    dataType: ONNX_DTYPE[dtype],
    dims: [...shape],
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}
