/**
 * Where the windows of MONAI 1.3.2's `sliding_window_inference` go over a 3-D volume: padding of the axes smaller
 * than the roi, scan interval, window starts per axis and their C-order visiting sequence. Pure arithmetic.
 */
import { UserError } from '../../common/user-error';

export type Triple = readonly [number, number, number];

/** Sliding-window options that cannot work (roi, overlap, batch size, blending mode). */
export class SlidingWindowError extends UserError {}

export interface WindowPlan {
  /** The input's spatial size. */
  readonly shape: Triple;
  readonly roi: Triple;
  /** Zeros added before/after along each axis smaller than the roi: floor(d / 2) before, the rest after. */
  readonly padBefore: Triple;
  readonly padAfter: Triple;
  /** Size after padding: max(shape, roi) per axis. */
  readonly paddedSize: Triple;
  /** `int(roi * (1 - overlap))` (at least 1), or the roi itself where the padded axis equals the roi. */
  readonly scanInterval: Triple;
  /** Window starts per axis in padded coordinates; the last one is clamped to `paddedSize - roi`. */
  readonly starts: readonly [readonly number[], readonly number[], readonly number[]];
  /** Number of windows: the product of the per-axis start counts. */
  readonly windows: number;
}

/** A roi given as one edge length or one per axis, checked to be positive integers. */
export function roiTriple(roi: number | Triple): Triple {
  const triple: Triple = typeof roi === 'number' ? [roi, roi, roi] : roi;
  if (triple.length !== 3 || !triple.every((r) => Number.isInteger(r) && r > 0)) {
    throw new SlidingWindowError(`roi must be one or three positive integers, got ${JSON.stringify(roi)}`);
  }
  return triple;
}

/** The window layout of `sliding_window_inference(roi_size=roi, overlap=overlap)` over a volume of `shape`. */
export function planWindows(shape: Triple, roi: number | Triple, overlap: number): WindowPlan {
  const r = roiTriple(roi);
  if (!(overlap >= 0 && overlap < 1)) throw new SlidingWindowError(`overlap must be >= 0 and < 1, got ${overlap}`);
  if (!shape.every((n) => Number.isInteger(n) && n > 0)) throw new SlidingWindowError(`bad volume shape ${shape.join('x')}`);
  const perAxis = [0, 1, 2].map((a) => {
    const diff = Math.max(r[a] - shape[a], 0);
    const before = Math.floor(diff / 2);
    const size = Math.max(shape[a], r[a]);
    const interval = size === r[a] ? r[a] : Math.max(Math.trunc(r[a] * (1 - overlap)), 1);
    return { before, after: diff - before, size, interval, starts: axisStarts(size, r[a], interval) };
  });
  const triple = (f: (p: (typeof perAxis)[number]) => number): Triple => [f(perAxis[0]), f(perAxis[1]), f(perAxis[2])];
  return {
    shape,
    roi: r,
    padBefore: triple((p) => p.before),
    padAfter: triple((p) => p.after),
    paddedSize: triple((p) => p.size),
    scanInterval: triple((p) => p.interval),
    starts: [perAxis[0].starts, perAxis[1].starts, perAxis[2].starts],
    windows: perAxis.reduce((n, p) => n * p.starts.length, 1),
  };
}

/** The smallest k with (k - 1) * interval + roi >= size windows; starts i * interval, shifted back inside. */
function axisStarts(size: number, roi: number, interval: number): number[] {
  let count = 1;
  while ((count - 1) * interval + roi < size) count++;
  return Array.from({ length: count }, (_, i) => i * interval - Math.max(i * interval + roi - size, 0));
}

/** Window `index` of the plan (C order over the start grid, first axis slowest) as its padded-space origin. */
export function windowOrigin(plan: WindowPlan, index: number): Triple {
  const [sx, sy, sz] = plan.starts;
  const z = index % sz.length;
  const y = Math.floor(index / sz.length) % sy.length;
  const x = Math.floor(index / (sz.length * sy.length));
  return [sx[x], sy[y], sz[z]];
}
