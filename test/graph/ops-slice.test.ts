import { Graph } from '../../graph/core/graph';
import { mul } from '../../graph/ops/elementwise';
import { int64s } from '../../graph/ops/int64';
import { scan } from '../../graph/ops/scan';
import { reshape } from '../../graph/ops/shape';
import { concat, pad, slice, sliceAt, split } from '../../graph/ops/slice';
import { gradcheck } from '../helpers/gradcheck';
import { evaluate, iota } from './ops-eval';

const line = { shape: [10], values: iota(10) };

describe('Slice', () => {
  test('forward: steps, negative steps, negative and clamped bounds', async () => {
    const run = async (spec: Parameters<typeof slice>[1]) => (await evaluate([line], (x) => slice(x, spec))).values;
    expect(await run({ starts: [8], ends: [1], steps: [-3] })).toEqual([8, 5, 2]);
    expect(await run({ starts: [-1], ends: [-Infinity], steps: [-1] })).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect(await run({ starts: [2], ends: [100], steps: [3] })).toEqual([2, 5, 8]);
    expect(await run({ starts: [-100], ends: [-7] })).toEqual([0, 1, 2]);
    expect(await run({ starts: [100], ends: [-100], steps: [-4] })).toEqual([9, 5, 1]);
    const grid = await evaluate([{ shape: [3, 4], values: iota(12) }], (x) =>
      slice(x, { starts: [-1, 0], ends: [0, 3], axes: [1, 0], steps: [-2, 2] }),
    );
    expect(grid).toEqual({ values: [3, 1, 11, 9], shape: [2, 2] });
  });

  test('gradient: unit steps (one Pad), strides with overhang, negative steps, several axes', async () => {
    await gradcheck([{ shape: [4, 5] }], (x) => slice(x, { starts: [1, -3], ends: [3, 100] }));
    await gradcheck([{ shape: [10] }], (x) => slice(x, { starts: [1], ends: [10], steps: [4] }));
    await gradcheck([{ shape: [10] }], (x) => slice(x, { starts: [8], ends: [1], steps: [-3] }));
    await gradcheck([{ shape: [10] }], (x) => slice(x, { starts: [-1], ends: [-Infinity], steps: [-1] }));
    await gradcheck([{ shape: [3, 5, 6] }], (x) => slice(x, { starts: [0, 4, 1], ends: [3, 0, 6], axes: [0, 1, 2], steps: [2, -2, 3] }));
    await gradcheck([{ shape: [2, 7, 4] }], (x) => slice(x, { starts: [5, 0], ends: [-100, 3], axes: [-2, 2], steps: [-1, 1] }));
  });

  test('errors name the op and the shapes', () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [2, 3]);
    expect(() => slice(x, { starts: [0], ends: [1], steps: [0] })).toThrow(/Slice: steps \[0\] must be non-zero integers for \[2, 3\]/);
    expect(() => slice(x, { starts: [0], ends: [1, 2] })).toThrow(/Slice: starts, ends, axes and steps differ in length for \[2, 3\]/);
    expect(() => slice(x, { starts: [0], ends: [1], axes: [2] })).toThrow(/Slice: axis 2 out of range for rank 2/);
    expect(slice(x, { starts: [2], ends: [0], axes: [1] }).shape).toEqual([2, 0]);
  });
});

describe('sliceAt (a computed start)', () => {
  test('a Scan moves a window of 3 along axis 1 by the starts it scans', async () => {
    const y = await evaluate([{ shape: [2, 6], values: iota(12) }], (x) => {
      const starts = reshape(int64s(x.graph, [0, 3, 2]), [3, 1]);
      return scan([], [starts], (body, _, [start]) => ({ states: [], outputs: [sliceAt(body.capture(x), start, 3, 1)] })).outputs[0];
    });
    expect(y.shape).toEqual([3, 2, 3]);
    expect(y.values).toEqual([0, 1, 2, 6, 7, 8, 3, 4, 5, 9, 10, 11, 2, 3, 4, 8, 9, 10]);
  });

  test('errors name the op and the shapes', () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [2, 6]);
    expect(() => sliceAt(x, int64s(g, [0, 1]), 3, 1)).toThrow(/Slice: a computed start must be int64 \[1\], got int64\[2\]/);
    expect(() => sliceAt(x, int64s(g, [0]), 7, 1)).toThrow(/Slice: 7 elements do not fit axis 1 of \[2, 6\]/);
  });
});

describe('Concat and Split', () => {
  test('Concat forward and gradient', async () => {
    const y = await evaluate([{ shape: [2, 1], values: [0, 1] }, { shape: [2, 2], values: [2, 3, 4, 5] }], (a, b) => concat([a, b], -1));
    expect(y).toEqual({ values: [0, 2, 3, 1, 4, 5], shape: [2, 3] });
    await gradcheck([{ shape: [2, 1, 3] }, { shape: [2, 2, 3] }, { shape: [2, 4, 3] }], (a, b, c) => concat([a, b, c], 1));
  });

  test('Split forward; outputs that do not reach the loss get zero gradient', async () => {
    const y = await evaluate([{ shape: [2, 3], values: iota(6) }], (x) => split(x, [1, 2], 1)[1]);
    expect(y).toEqual({ values: [1, 2, 4, 5], shape: [2, 2] });
    await gradcheck([{ shape: [2, 6] }], (x) => {
      const [p, , r] = split(x, [1, 2, 3], 1);
      return mul(r, p);
    });
    await gradcheck([{ shape: [5, 2] }], (x) => split(x, [3, 2])[0]);
  });

  test('errors name the op and the shapes', () => {
    const g = new Graph();
    const a = g.input('a', 'float64', [2, 3]);
    expect(() => concat([a, g.input('b', 'float64', [3, 3])], 1)).toThrow(/Concat: float64\[2, 3\], float64\[3, 3\] do not fit together along axis 1/);
    expect(() => split(a, [1, 1], 1)).toThrow(/Split: sizes \[1, 1\] do not cut axis 1 of \[2, 3\]/);
  });
});

describe('Pad', () => {
  const x = { shape: [2, 3], values: [1, 2, 3, 4, 5, 6] };
  const pads = [1, 2, 0, 1];

  test('forward: constant, edge and reflect modes', async () => {
    expect((await evaluate([x], (t) => pad(t, pads, { value: 1.5 }))).values).toEqual([
      1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1, 2, 3, 1.5, 1.5, 1.5, 4, 5, 6, 1.5,
    ]);
    expect((await evaluate([x], (t) => pad(t, pads, { mode: 'edge' }))).values).toEqual([
      1, 1, 1, 2, 3, 3, 1, 1, 1, 2, 3, 3, 4, 4, 4, 5, 6, 6,
    ]);
    expect((await evaluate([x], (t) => pad(t, pads, { mode: 'reflect' }))).values).toEqual([
      6, 5, 4, 5, 6, 5, 3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5,
    ]);
  });

  test('gradients of all three modes', async () => {
    await gradcheck([{ shape: [2, 3, 4] }], (t) => pad(t, [0, 1, 2, 0, 2, 1], { value: 0.5 }));
    await gradcheck([{ shape: [2, 1, 4] }], (t) => pad(t, [1, 2, 0, 0, 1, 3], { mode: 'edge' }));
    await gradcheck([{ shape: [2, 3, 4] }], (t) => pad(t, [0, 2, 3, 1, 1, 2], { mode: 'edge' }));
    await gradcheck([{ shape: [2, 3, 4] }], (t) => pad(t, [1, 2, 3, 0, 1, 2], { mode: 'reflect' }));
    await gradcheck([{ shape: [2, 6] }], (t) => pad(t, [0, 2, 0, 1], { mode: 'reflect' }));
  });

  test('errors name the op and the shapes', () => {
    const g = new Graph();
    const t = g.input('t', 'float64', [2, 3]);
    expect(() => pad(t, [1, 1])).toThrow(/Pad: pads \[1, 1\] for \[2, 3\] must be 2 x rank non-negative integers/);
    expect(() => pad(t, [0, 3, 0, 0], { mode: 'reflect' })).toThrow(/Pad: reflect mode needs axis 1 longer than its padding/);
    expect(pad(t, [0, 0, 0, 0])).toBe(t);
  });
});
