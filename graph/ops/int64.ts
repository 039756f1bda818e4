import { Graph, Tensor } from '../core/graph';

/** A 1-D int64 constant, the form ONNX takes for shapes, axes, starts and pads. */
export function int64s(graph: Graph, values: readonly number[], name = 'ints'): Tensor {
  return graph.constant(BigInt64Array.from(values.map((v) => BigInt(v))), 'int64', [values.length], name);
}
