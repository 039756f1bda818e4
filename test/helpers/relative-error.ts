/** Error measures for comparing our tensors with reference ones. */

/** max |a - b| / max |b|: a relative error that ignores elements far below the tensor's scale. */
export function maxRelative(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

export function norm(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

/**
 * sqrt(sum (a - b)^2 / sum b^2) in float64, with the norm of b held at least 1e-30: 0 where both are all zeros (a
 * gradient nothing reaches in either computation), huge where only b is.
 */
export function relativeL2OfAny(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < b.length; i++) {
    diff += (a[i] - b[i]) ** 2;
    norm += b[i] ** 2;
  }
  return Math.sqrt(diff / Math.max(norm, 1e-30));
}

/** ||a - b|| / ||b|| over the first b.length elements of a. */
export function relativeL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  for (let i = 0; i < b.length; i++) num += (a[i] - b[i]) ** 2;
  return Math.sqrt(num) / norm(b);
}

/** Names whose error exceeds its bound, with the error: [] when all pass (a readable failure otherwise). */
export function overBound(names: readonly string[], error: (name: string) => number, bound: (name: string) => number): string[] {
  return names.flatMap((name) => {
    const e = error(name);
    return e <= bound(name) ? [] : [`${name}: ${e.toExponential(2)} > ${bound(name)}`];
  });
}
