/**
 * A symbolic batch axis (graph/onnx/symbolic-batch.ts): a small windowed model built with one row runs on 1, 2 and
 * 3 rows under ONNX Runtime's strict shape inference, each row as the fixed one-row model computes it alone; the
 * file declares `batch` on its input and output; operators that would mix or drop the rows are refused, naming
 * the node.
 */
import * as ort from 'onnxruntime-node';
import { Rng } from '../../common/rng';
import { Graph, Tensor } from '../../graph/core/graph';
import { conv3d } from '../../graph/nn/conv';
import { initialValues } from '../../graph/nn/init';
import { layerNorm } from '../../graph/nn/norm';
import { linear } from '../../graph/nn/linear';
import { ModelSpec, buildModel } from '../../graph/onnx/model';
import { SymbolicBatchError } from '../../graph/onnx/symbolic-batch';
import { add } from '../../graph/ops/elementwise';
import { reduceSum } from '../../graph/ops/reduce';
import { reshape } from '../../graph/ops/shape';
import { concat, pad, slice } from '../../graph/ops/slice';
import { transpose } from '../../graph/ops/transpose';
import { cpuSession } from '../helpers/ort';

/** x [1, 2, 4, 4, 4] -> conv, channels last, padded to 6^3, 2^3 windows of 27 tokens, linear, back, cropped. */
function windowedModel(): { graph: Graph; x: Tensor; y: Tensor } {
  const g = new Graph();
  const x = g.input('x', 'float32', [1, 2, 4, 4, 4]);
  const c = g.scope('conv', () => conv3d(x, { inChannels: 2, outChannels: 3, kernelSize: 3, stride: 1, padding: 1, bias: true }));
  const last = pad(transpose(c, [0, 2, 3, 4, 1]), [0, 0, 0, 0, 0, 0, 2, 2, 2, 0]);
  const windows = reshape(transpose(reshape(last, [1, 2, 3, 2, 3, 2, 3, 3]), [0, 1, 3, 5, 2, 4, 6, 7]), [8, 27, 3]);
  const mixed = g.scope('norm', () => layerNorm(g.scope('fc', () => linear(windows, { inFeatures: 3, outFeatures: 3 })), { normalizedShape: [3] }));
  const back = transpose(reshape(mixed, [1, 2, 2, 2, 3, 3, 3, 3]), [0, 1, 4, 2, 5, 3, 6, 7]);
  const grid = slice(reshape(back, [1, 6, 6, 6, 3]), { starts: [0, 0, 0], ends: [4, 4, 4], axes: [1, 2, 3] });
  return { graph: g, x, y: concat([grid, add(grid, grid)], 4) };
}

const rowValues = 2 * 4 ** 3;

describe('a symbolic batch axis', () => {
  test('1, 2 and 3 rows give each row as the one-row model does, the file naming the axis `batch`', async () => {
    const { graph, x, y } = windowedModel();
    const weights = initialValues(graph, new Rng(3));
    const spec: ModelSpec = { name: 'windows', inputs: [x], outputs: [{ name: 'y', tensor: y }], weights };
    const fixed = await cpuSession(spec);
    const symbolic = await cpuSession({ ...spec, symbolicBatch: { inputs: [x], dim: 'batch' } });
    const meta = (m: readonly ort.InferenceSession.ValueMetadata[]) => m.map((v) => (v.isTensor ? v.shape : []));
    expect(meta(symbolic.inputMetadata)).toEqual([['batch', 2, 4, 4, 4]]);
    expect(meta(symbolic.outputMetadata)).toEqual([['batch', 4, 4, 4, 6]]);
    expect(meta(fixed.inputMetadata)).toEqual([[1, 2, 4, 4, 4]]);

    const rng = new Rng(9);
    const rows = Float32Array.from({ length: 3 * rowValues }, () => rng.normal());
    const alone: Float32Array[] = [];
    for (let r = 0; r < 3; r++) {
      const out = await fixed.run({ x: new ort.Tensor('float32', rows.slice(r * rowValues, (r + 1) * rowValues), [1, 2, 4, 4, 4]) });
      alone.push(out.y.data as Float32Array);
    }
    for (const n of [1, 2, 3]) {
      const out = await symbolic.run({ x: new ort.Tensor('float32', rows.slice(0, n * rowValues), [n, 2, 4, 4, 4]) });
      expect(out.y.dims).toEqual([n, 4, 4, 4, 6]);
      const data = out.y.data as Float32Array;
      for (let r = 0; r < n; r++) {
        const part = data.subarray(r * alone[r].length, (r + 1) * alone[r].length);
        expect(Math.max(...alone[r].map((v, i) => Math.abs(v - part[i])))).toBeLessThan(1e-6);
      }
    }
    await Promise.all([fixed.release(), symbolic.release()]);
  });

  test('a model built with more than one row is refused', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2, 3]);
    expect(() => buildModel({ name: 'm', inputs: [x], outputs: [{ name: 'y', tensor: add(x, x) }], symbolicBatch: { inputs: [x], dim: 'batch' } })).toThrow(
      'x [2, 3]: a symbolic batch needs the model built with one row',
    );
  });

  const refusals: [string, (x: Tensor) => Tensor, RegExp][] = [
    ['moving the batch axis', (x) => transpose(x, [1, 0, 2]), /^Transpose \(Transpose of \[1, 4, 5\]\): .*it moves the batch axis$/],
    ['slicing it', (x) => slice(x, { starts: [0], ends: [1], axes: [0] }), /^Slice .*: it slices the batch axis$/],
    ['padding it', (x) => pad(x, [1, 0, 0, 0, 0, 0]), /it pads the batch axis$/],
    ['reducing over it (no rule)', (x) => reduceSum(x, [0], true), /^ReduceSum .*: it has no symbolic-batch rule$/],
    ['concatenating a constant to it', (x) => concat([x, x.graph.constant(new Float32Array(20), 'float32', [1, 4, 5])], 1), /would not be repeated per row$/],
    ['broadcasting a constant with rows of its own', (x) => add(x, x.graph.constant(new Float32Array(60), 'float32', [3, 4, 5])), /does not broadcast along the rows/],
  ];
  test.each(refusals)('an operator %s is refused, naming the node', (_, build, message) => {
    const g = new Graph();
    const x = g.input('x', 'float32', [1, 4, 5]);
    const spec: ModelSpec = { name: 'm', inputs: [x], outputs: [{ name: 'y', tensor: build(x) }], symbolicBatch: { inputs: [x], dim: 'batch' } };
    expect(() => buildModel(spec)).toThrow(SymbolicBatchError);
    expect(() => buildModel(spec)).toThrow(message);
  });
});
