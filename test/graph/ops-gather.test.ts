import { Graph } from '../../graph/core/graph';
import { gather } from '../../graph/ops/gather';
import { gradcheck } from '../helpers/gradcheck';
import { evaluate, iota } from './ops-eval';

describe('Gather', () => {
  const grid = { shape: [3, 4], values: iota(12) };

  test('forward: constant indices (negative, repeated), indices fed as an input, scalar index', async () => {
    expect(await evaluate([grid], (x) => gather(x, [2, -3, 2], 0))).toEqual({ values: [8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11], shape: [3, 4] });
    const fed = await evaluate([grid, { shape: [2, 2], values: [3, 0, -1, 1], dtype: 'int64' }], (x, i) => gather(x, i, 1));
    expect(fed).toEqual({ values: [3, 0, 3, 1, 7, 4, 7, 5, 11, 8, 11, 9], shape: [3, 2, 2] });
    const g = new Graph();
    const x = g.input('x', 'float64', [3, 4]);
    expect(gather(x, g.constant(BigInt64Array.from([1n]), 'int64', []), 1).shape).toEqual([3]);
  });

  test('gradient: repeated indices accumulate (ScatterElements with reduction add, float64)', async () => {
    await gradcheck([{ shape: [5, 3] }], (x) => gather(x, [4, 0, 4, -1, 2], 0));
    await gradcheck([{ shape: [2, 5, 3] }], (x) => gather(x, [1, 1, 3], 1));
    const r = await gradcheck([{ shape: [2, 3, 4] }, { shape: [2, 3], values: [3, 0, 3, -2, 1, 3], dtype: 'int64', constant: true }], (x, i) =>
      gather(x, i, 2),
    );
    expect(r.checked).toBe(24);
  });

  test('errors name the op and the shapes', () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [3, 4]);
    expect(() => gather(x, [4], 0)).toThrow(/Gather: index 4 out of range for axis 0 of \[3, 4\]/);
    expect(() => gather(x, [-5], 1)).toThrow(/Gather: index -5 out of range for axis 1 of \[3, 4\]/);
    expect(() => gather(x, [0], 2)).toThrow(/Gather: axis 2 out of range for rank 2/);
    expect(() => gather(x, g.input('f', 'float64', [2]), 0)).toThrow(/Gather: indices must be int64, got f: float64\[2\]/);
  });
});
