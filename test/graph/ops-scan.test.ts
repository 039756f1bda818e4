import { Graph } from '../../graph/core/graph';
import { ShapeError } from '../../graph/core/shape';
import { attention } from '../../graph/ops/attention';
import { add, mul, filled } from '../../graph/ops/elementwise';
import { reduceMean } from '../../graph/ops/reduce';
import { scan } from '../../graph/ops/scan';
import { reshape } from '../../graph/ops/shape';
import { buildModel } from '../../graph/onnx/model';
import { cpuSession, runSession } from '../helpers/ort';

describe('Scan with a body built by the DSL', () => {
  test('states, scanned slices, a captured tensor and a state passed through run in ONNX Runtime', async () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [4, 3]);
    const w = g.input('w', 'float32', [3]);
    const fixed = g.input('fixed', 'float32', [2]);
    // acc_i = acc_{i-1} * 0.5 + x_i * w; outputs: acc_i per step, and x_i itself (a body input as an output).
    const r = scan([filled(g, 'float32', [3], 1), fixed], [x], (body, [acc, kept], [xi]) => {
      const next = add(mul(acc, 0.5), mul(xi, body.capture(w)));
      return { states: [next, kept], outputs: [next, xi] };
    });
    const [final, kept] = r.states;
    const [steps, slices] = r.outputs;
    expect(steps.shape).toEqual([4, 3]);
    const session = await cpuSession({
      name: 'scan',
      inputs: [x, w, fixed],
      outputs: [{ name: 'final', tensor: final }, { name: 'kept', tensor: kept }, { name: 'steps', tensor: steps }, { name: 'slices', tensor: slices }],
    });
    const xs = Float32Array.from({ length: 12 }, (_, i) => i - 5);
    const ws = Float32Array.from([0.5, -1, 2]);
    const out = await runSession(session, new Map([[x, xs], [w, ws], [fixed, Float32Array.from([7, 8])]]));
    const expected: number[] = [];
    let acc = [1, 1, 1];
    for (let i = 0; i < 4; i++) {
      acc = acc.map((a, j) => a * 0.5 + xs[i * 3 + j] * ws[j]);
      expected.push(...acc);
    }
    expect(Array.from(out.steps)).toEqual(expected.map(Math.fround));
    expect(Array.from(out.final)).toEqual(expected.slice(9).map(Math.fround));
    expect(Array.from(out.kept)).toEqual([7, 8]);
    expect(Array.from(out.slices)).toEqual(Array.from(xs));
  });

  test("a body with an Attention node makes the model opset 23, its reductions' axes become inputs, its names cannot shadow the outer graph's", async () => {
    const g = new Graph();
    const q = g.input('q', 'float32', [3, 1, 1, 2, 2]);
    const x = g.input('x', 'float32', [3, 2, 4]);
    const r = scan([], [q, x], (_body, _states, [qi, xi]) => ({ states: [], outputs: [reduceMean(xi, [1], false), attention(qi, qi, qi, null)] }));
    const spec = { name: 'm', inputs: [q, x], outputs: [{ name: 'means', tensor: r.outputs[0] }, { name: 'a', tensor: r.outputs[1] }] };
    const model = buildModel(spec);
    expect(model.opsetImport[0].version).toBe(23);
    const body = model.graph!.node!.find((n) => n.opType === 'Scan')!.attribute!.find((a) => a.name === 'body')!.g!;
    expect(body.node!.find((n) => n.opType === 'ReduceMean')!.input).toHaveLength(2);
    expect(body.node!.every((n) => n.name!.startsWith('Scan/') && n.output!.every((o) => o.startsWith('Scan/')))).toBe(true);
    const out = await runSession(await cpuSession(spec), new Map([[q, new Float32Array(12).fill(1)], [x, Float32Array.from({ length: 24 }, (_, i) => i)]]));
    expect(Array.from(out.means)).toEqual([1.5, 5.5, 9.5, 13.5, 17.5, 21.5]);
    expect(Array.from(out.a)).toEqual(new Array(12).fill(1));
  });

  test('scanned inputs of different lengths, a state that changes shape and a foreign capture are refused', () => {
    const g = new Graph();
    const a = g.input('a', 'float32', [4, 3]);
    const b = g.input('b', 'float32', [5, 3]);
    expect(() => scan([], [a, b], () => ({ states: [], outputs: [] }))).toThrow(ShapeError);
    expect(() => scan([g.input('s', 'float32', [3])], [a], (_body, [s]) => ({ states: [reshape(s, [1, 3])], outputs: [] }))).toThrow(
      new ShapeError('Scan: state 0 enters as float32[3] and leaves as float32[1, 3]'),
    );
    const other = new Graph().input('o', 'float32', [3]);
    expect(() => scan([], [a], (body) => ({ states: [], outputs: [body.capture(other)] }))).toThrow(/not a tensor of the graph around this body/);
  });
});
