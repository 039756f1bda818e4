/**
 * Small dense-matrix helpers for 4x4 affines (row-major number arrays). The operation order follows what
 * LAPACK/BLAS do for these sizes (partial pivoting, division by a pivot as multiplication by its reciprocal), so
 * that rounding-sensitive results such as MONAI's output-shape rounding come out the same.
 */
export type Matrix = number[];

export function identity(n: number): Matrix {
  return Array.from({ length: n * n }, (_, i) => (Math.floor(i / n) === i % n ? 1 : 0));
}

/** a (n x m) times b (m x p), summing in index order. */
export function matmul(a: readonly number[], b: readonly number[], n: number, m: number, p: number): Matrix {
  const out = new Array<number>(n * p).fill(0);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < p; j++) {
      let s = 0;
      for (let k = 0; k < m; k++) s += a[i * m + k] * b[k * p + j];
      out[i * p + j] = s;
    }
  }
  return out;
}

export function matmul4(a: readonly number[], b: readonly number[]): Matrix {
  return matmul(a, b, 4, 4, 4);
}

/** Solves a x = b for square a (n x n) and b (n x p) by LU with partial pivoting, as LAPACK's gesv. */
export function solve(a: readonly number[], b: readonly number[], n: number, p: number): Matrix {
  const lu = [...a];
  const x = [...b];
  for (let k = 0; k < n; k++) {
    let pivot = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(lu[i * n + k]) > Math.abs(lu[pivot * n + k])) pivot = i;
    if (lu[pivot * n + k] === 0) throw new Error('singular matrix');
    if (pivot !== k) {
      swapRows(lu, n, k, pivot);
      swapRows(x, p, k, pivot);
    }
    const inv = 1 / lu[k * n + k];
    for (let i = k + 1; i < n; i++) {
      const f = lu[i * n + k] * inv;
      lu[i * n + k] = f;
      for (let j = k + 1; j < n; j++) lu[i * n + j] -= f * lu[k * n + j];
    }
  }
  for (let c = 0; c < p; c++) {
    for (let i = 1; i < n; i++) for (let k = 0; k < i; k++) x[i * p + c] -= lu[i * n + k] * x[k * p + c];
    for (let i = n - 1; i >= 0; i--) {
      let s = x[i * p + c];
      for (let k = i + 1; k < n; k++) s -= lu[i * n + k] * x[k * p + c];
      x[i * p + c] = s * (1 / lu[i * n + i]);
    }
  }
  return x;
}

function swapRows(m: number[], width: number, r1: number, r2: number): void {
  for (let j = 0; j < width; j++) {
    const t = m[r1 * width + j];
    m[r1 * width + j] = m[r2 * width + j];
    m[r2 * width + j] = t;
  }
}

export function translation(t: readonly number[]): Matrix {
  return [1, 0, 0, t[0], 0, 1, 0, t[1], 0, 0, 1, t[2], 0, 0, 0, 1];
}

/** The upper-left 3x3 of a 4x4. */
export function linearPart(affine: readonly number[]): Matrix {
  return [0, 1, 2, 4, 5, 6, 8, 9, 10].map((i) => affine[i]);
}

/** Voxel sizes: the Euclidean norms of the columns of the 3x3 part. */
export function columnNorms(affine: readonly number[]): [number, number, number] {
  const n = (j: number) => Math.sqrt(affine[j] * affine[j] + affine[4 + j] * affine[4 + j] + affine[8 + j] * affine[8 + j]);
  return [n(0), n(1), n(2)];
}

/** numpy/torch allclose: |a - b| <= atol + rtol * |b| elementwise. */
export function allClose(a: readonly number[], b: readonly number[], atol: number, rtol = 1e-5): boolean {
  return a.every((v, i) => Math.abs(v - b[i]) <= atol + rtol * Math.abs(b[i]));
}

/** numpy.round: to the nearest integer, ties to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
