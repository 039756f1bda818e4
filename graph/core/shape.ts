export type Shape = readonly number[];

export class ShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShapeError';
  }
}

export function size(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The largest divisor of `n` not above `most` (at least 1): an axis of `n` split into equal parts of at most `most`. */
export function largestDivisor(n: number, most: number): number {
  for (let c = Math.min(n, Math.max(1, Math.floor(most))); c > 1; c--) if (n % c === 0) return c;
  return 1;
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Numpy/ONNX multidirectional broadcasting; throws naming the op and both shapes when they do not broadcast. */
export function broadcastShapes(op: string, shapes: readonly Shape[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let dim = 1;
    for (const s of shapes) {
      const d = s[s.length - rank + i] ?? 1;
      if (d === 1) continue;
      if (dim !== 1 && dim !== d) {
        throw new ShapeError(`${op}: shapes ${shapes.map(formatShape).join(' and ')} do not broadcast`);
      }
      dim = d;
    }
    out.push(dim);
  }
  return out;
}

/** Resolves a possibly negative axis against a rank, naming the op when it is out of range. */
export function normaliseAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new ShapeError(`${op}: axis ${axis} out of range for rank ${rank}`);
  return a;
}
