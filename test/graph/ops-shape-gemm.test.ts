import { Graph } from '../../graph/core/graph';
import { ShapeError } from '../../graph/core/shape';
import { gemm } from '../../graph/ops/matmul';
import { expand, flatten, squeeze, unsqueeze } from '../../graph/ops/shape';
import { gradcheck } from '../helpers/gradcheck';
import { evaluate, iota } from './ops-eval';

describe('Squeeze, Unsqueeze, Flatten, Expand', () => {
  test('shapes and gradients', async () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [2, 1, 3, 1]);
    expect(squeeze(x).shape).toEqual([2, 3]);
    expect(squeeze(x, [-1]).shape).toEqual([2, 1, 3]);
    expect(unsqueeze(g.input('y', 'float64', [2, 3]), [0, -1, 2]).shape).toEqual([1, 2, 1, 3, 1]);
    expect(flatten(x, 2).shape).toEqual([2, 3]);
    expect(flatten(x, 0).shape).toEqual([1, 6]);
    expect(flatten(x, -1).shape).toEqual([6, 1]);
    await gradcheck([{ shape: [2, 1, 3] }], (t) => squeeze(t, [1]));
    await gradcheck([{ shape: [2, 3] }], (t) => unsqueeze(t, [0, 3]));
    await gradcheck([{ shape: [2, 3, 2] }], (t) => flatten(t, 1));
    await gradcheck([{ shape: [3, 1] }], (t) => expand(t, [2, 1, 4]));
    expect(await evaluate([{ shape: [2, 3], values: iota(6) }], (t) => unsqueeze(t, [1]))).toEqual({ values: iota(6), shape: [2, 1, 3] });
  });

  test('errors name the op and the shapes', () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [2, 1, 3]);
    expect(() => squeeze(x, [0])).toThrow(new ShapeError('Squeeze: axis 0 of [2, 1, 3] has size 2, not 1'));
    expect(() => unsqueeze(x, [1, 1])).toThrow(/Unsqueeze: repeated axis in \[1, 1\] for \[2, 1, 3\]/);
    expect(() => unsqueeze(x, [4])).toThrow(/Unsqueeze: axis 4 out of range for rank 4/);
    expect(() => flatten(x, 4)).toThrow(/Flatten: axis 4 out of range for \[2, 1, 3\]/);
  });
});

describe('Gemm', () => {
  test('forward with transposes, alpha, beta and a broadcast bias', async () => {
    const a = { shape: [2, 3], values: iota(6) };
    const b = { shape: [2, 3], values: [1, 0, 1, 0, 1, 0] };
    const c = { shape: [2, 1], values: [10, 20] };
    const y = await evaluate([a, b, c], (p, q, r) => gemm(p, q, r, { transB: true, alpha: 2, beta: 0.5 }));
    // a @ b^T = [[2, 1], [8, 4]]
    expect(y).toEqual({ values: [9, 7, 26, 18], shape: [2, 2] });
  });

  test('gradients for every transpose combination and bias shape', async () => {
    const shapeOf = (rows: number, cols: number, t: boolean) => (t ? [cols, rows] : [rows, cols]);
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        await gradcheck(
          [{ shape: shapeOf(2, 3, transA) }, { shape: shapeOf(3, 4, transB) }, { shape: [4] }],
          (p, q, r) => gemm(p, q, r, { transA, transB, alpha: 0.75, beta: 1.5 }),
        );
      }
    }
    await gradcheck([{ shape: [2, 3] }, { shape: [3, 4] }, { shape: [2, 1] }], (p, q, r) => gemm(p, q, r));
    await gradcheck([{ shape: [2, 3] }, { shape: [3, 4] }, { shape: [] }], (p, q, r) => gemm(p, q, r, { beta: -2 }));
    await gradcheck([{ shape: [3, 2] }, { shape: [4, 3] }], (p, q) => gemm(p, q, null, { transA: true, transB: true }));
  });

  test('errors name the op and the shapes', () => {
    const g = new Graph();
    const a = g.input('a', 'float64', [2, 3]);
    const b = g.input('b', 'float64', [3, 4]);
    expect(() => gemm(a, a)).toThrow(/Gemm: inner dimensions differ in \[2, 3\], \[2, 3\]/);
    expect(() => gemm(a, b, g.input('c', 'float64', [3, 4]))).toThrow(/Gemm: c of \[3, 4\] does not broadcast to the result \[2, 4\]/);
    expect(() => gemm(g.input('v', 'float64', [3]), b)).toThrow(/Gemm: a and b must be 2-D, got \[3\], \[3, 4\]/);
  });
});
