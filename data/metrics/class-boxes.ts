import type { Box } from '../transforms/crop-foreground';

export type Triple = readonly [number, number, number];

/**
 * The bounding box of every class 0 .. numClasses - 1 of a [X, Y, Z] C-order label map in one pass; undefined for
 * a class with no voxel. Values outside the range are ignored.
 */
export function classBoxes(labels: ArrayLike<number>, shape: Triple, numClasses: number): (Box | undefined)[] {
  const [nx, ny, nz] = shape;
  const lo = Array.from({ length: numClasses }, () => [nx, ny, nz]);
  const hi = Array.from({ length: numClasses }, () => [-1, -1, -1]);
  let i = 0;
  for (let x = 0; x < nx; x++) {
    for (let y = 0; y < ny; y++) {
      for (let z = 0; z < nz; z++, i++) {
        const c = labels[i];
        if (!(c >= 0 && c < numClasses)) continue;
        const [l, h] = [lo[c], hi[c]];
        if (x < l[0]) l[0] = x;
        if (x > h[0]) h[0] = x;
        if (y < l[1]) l[1] = y;
        if (y > h[1]) h[1] = y;
        if (z < l[2]) l[2] = z;
        if (z > h[2]) h[2] = z;
      }
    }
  }
  return lo.map((l, c) => (hi[c][0] < 0 ? undefined : { start: [l[0], l[1], l[2]], end: [hi[c][0] + 1, hi[c][1] + 1, hi[c][2] + 1] }));
}

/** The smallest box holding both (either may be undefined), grown by `margin` voxels and clipped to the grid. */
export function unionBox(a: Box | undefined, b: Box | undefined, margin: number, shape: Triple): Box | undefined {
  if (!a && !b) return undefined;
  const boxes = [a, b].filter((box): box is Box => box !== undefined);
  const start = [0, 1, 2].map((d) => Math.max(Math.min(...boxes.map((box) => box.start[d])) - margin, 0));
  const end = [0, 1, 2].map((d) => Math.min(Math.max(...boxes.map((box) => box.end[d])) + margin, shape[d]));
  return { start: [start[0], start[1], start[2]], end: [end[0], end[1], end[2]] };
}

export function boxSize(box: Box): [number, number, number] {
  return [box.end[0] - box.start[0], box.end[1] - box.start[1], box.end[2] - box.start[2]];
}
