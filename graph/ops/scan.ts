import { Graph, Tensor, attr } from '../core/graph';
import { ShapeError, formatShape, sameShape } from '../core/shape';

export interface ScanStep {
  /** The loop-carried states' next values, in the order of `states`. */
  readonly states: readonly Tensor[];
  /** Per-iteration outputs, stacked by the node along a new leading axis. */
  readonly outputs: readonly Tensor[];
}

export interface ScanResult {
  /** The states after the last iteration. */
  readonly states: Tensor[];
  /** The per-iteration outputs stacked: [iterations, ...their shape]. */
  readonly outputs: Tensor[];
}

/**
 * ONNX Scan over the leading axis of each of `scanned` (one length for all): `step` builds the body in a graph of
 * its own from the current `states` and one slice of each scanned tensor. The body reads other tensors of this
 * graph through `body.capture`. One iteration's tensors are small enough to stay in cache where the same
 * computation over the whole axis would stream through memory (docs/performance.md).
 */
export function scan(
  states: readonly Tensor[],
  scanned: readonly Tensor[],
  step: (body: Graph, states: Tensor[], slices: Tensor[]) => ScanStep,
): ScanResult {
  const outer = scanned[0]?.graph;
  if (!outer) throw new ShapeError('Scan: nothing to scan');
  const length = scanned[0].shape[0];
  if (scanned.some((t) => t.rank === 0 || t.shape[0] !== length)) {
    throw new ShapeError(`Scan: scanned inputs must share their leading length, got ${scanned.map((t) => formatShape(t.shape)).join(', ')}`);
  }
  const body = new Graph(outer);
  const stateIn = states.map((t, i) => body.input(`state${i}`, t.dtype, t.shape));
  const slices = scanned.map((t, i) => body.input(`slice${i}`, t.dtype, t.shape.slice(1)));
  const built = step(body, stateIn, slices);
  if (built.states.length !== states.length) throw new ShapeError(`Scan: ${states.length} states in, ${built.states.length} out`);
  built.states.forEach((t, i) => {
    if (!sameShape(t.shape, states[i].shape) || t.dtype !== states[i].dtype) {
      throw new ShapeError(`Scan: state ${i} enters as ${states[i].dtype}${formatShape(states[i].shape)} and leaves as ${t.dtype}${formatShape(t.shape)}`);
    }
  });
  const results = outer.addNode(
    'Scan',
    [...states, ...scanned],
    { body: attr.graph({ graph: body, inputs: [...stateIn, ...slices], outputs: [...built.states, ...built.outputs] }), num_scan_inputs: attr.int(scanned.length) },
    [...states.map((t) => ({ dtype: t.dtype, shape: t.shape })), ...built.outputs.map((t) => ({ dtype: t.dtype, shape: [length, ...t.shape] }))],
  );
  return { states: results.slice(0, states.length), outputs: results.slice(states.length) };
}
