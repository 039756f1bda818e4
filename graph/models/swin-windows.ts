/**
 * Build-time geometry of MONAI's 3-D shifted-window attention: the window actually used at a resolution, the
 * padding to window multiples, the relative-position index and the region ids behind the shifted-window mask.
 * Everything here is plain arrays; the graph turns them into constants.
 */

export type Triple = readonly [number, number, number];

export interface WindowGeometry {
  /** The window used: the configured one, shrunk to the resolution on axes where the resolution is not larger. */
  readonly window: Triple;
  /** The cyclic shift used: 0 on axes where the window shrank. */
  readonly shift: Triple;
  /** The resolution padded (at the end) to window multiples. */
  readonly padded: Triple;
  /** Windows per axis. */
  readonly counts: Triple;
  /** Number of windows per sample. */
  readonly windows: number;
  /** Tokens per window. */
  readonly tokens: number;
}

export function windowGeometry(resolution: Triple, window: number, shift: number): WindowGeometry {
  const win = resolution.map((r) => (r <= window ? r : window)) as unknown as Triple;
  const sh = resolution.map((r) => (r <= window ? 0 : shift)) as unknown as Triple;
  const padded = resolution.map((r, i) => Math.ceil(r / win[i]) * win[i]) as unknown as Triple;
  const counts = padded.map((p, i) => p / win[i]) as unknown as Triple;
  return {
    window: win,
    shift: sh,
    padded,
    counts,
    windows: counts[0] * counts[1] * counts[2],
    tokens: win[0] * win[1] * win[2],
  };
}

export const isShifted = (g: WindowGeometry): boolean => g.shift.some((s) => s > 0);

/**
 * The relative-position index of a cubic window of side `w` (the `relative_position_index` buffer, [w^3, w^3]):
 * for tokens i, j in (d, h, w) row-major order, the offset (i - j) per axis shifted to be non-negative and
 * flattened with strides (2w-1)^2, 2w-1, 1.
 */
export function relativePositionIndex(w: number): BigInt64Array {
  const n = w * w * w;
  const span = 2 * w - 1;
  const out = new BigInt64Array(n * n);
  for (let i = 0; i < n; i++) {
    const [di, hi, wi] = [Math.floor(i / (w * w)), Math.floor(i / w) % w, i % w];
    for (let j = 0; j < n; j++) {
      const [dj, hj, wj] = [Math.floor(j / (w * w)), Math.floor(j / w) % w, j % w];
      out[i * n + j] = BigInt((di - dj + w - 1) * span * span + (hi - hj + w - 1) * span + (wi - wj + w - 1));
    }
  }
  return out;
}

/** The top-left [n, n] block of a square [full, full] index, flattened (upstream's `index[:n, :n]`). */
export function topLeftBlock(index: BigInt64Array, full: number, n: number): BigInt64Array {
  const out = new BigInt64Array(n * n);
  for (let i = 0; i < n; i++) out.set(index.subarray(i * full, i * full + n), i * n);
  return out;
}

/** Python's resolution of `slice(start, stop)` over an axis of `length`. */
function pythonRange(length: number, start: number | null, stop: number | null): [number, number] {
  const resolve = (v: number | null, dflt: number): number => {
    if (v === null) return dflt;
    return Math.min(Math.max(v < 0 ? v + length : v, 0), length);
  };
  return [resolve(start, 0), resolve(stop, length)];
}

/**
 * Region id of every token of every window of the padded, shifted grid ([windows, tokens], windows and tokens
 * both row-major), as MONAI's `compute_mask` labels them: three slices per axis (`[:-w]`, `[-w:-s]`, `[-s:]`),
 * later slices overwriting earlier ones. Tokens of different regions must not attend to each other.
 */
export function shiftRegionIds(g: WindowGeometry): Float32Array {
  const [pd, ph, pw] = g.padded;
  const label = new Float32Array(pd * ph * pw);
  const ranges = (axis: number): [number, number][] => {
    const len = g.padded[axis];
    const w = g.window[axis];
    const s = g.shift[axis];
    return [pythonRange(len, null, -w), pythonRange(len, -w, -s), pythonRange(len, -s, null)];
  };
  let count = 0;
  for (const [d0, d1] of ranges(0)) {
    for (const [h0, h1] of ranges(1)) {
      for (const [w0, w1] of ranges(2)) {
        for (let d = d0; d < d1; d++) for (let h = h0; h < h1; h++) for (let w = w0; w < w1; w++) label[(d * ph + h) * pw + w] = count;
        count++;
      }
    }
  }
  const [wd, wh, ww] = g.window;
  const [cd, ch, cw] = g.counts;
  const out = new Float32Array(g.windows * g.tokens);
  let k = 0;
  for (let a = 0; a < cd; a++) {
    for (let b = 0; b < ch; b++) {
      for (let c = 0; c < cw; c++) {
        for (let d = 0; d < wd; d++) {
          for (let h = 0; h < wh; h++) {
            for (let w = 0; w < ww; w++) out[k++] = label[((a * wd + d) * ph + (b * wh + h)) * pw + (c * ww + w)];
          }
        }
      }
    }
  }
  return out;
}

/** A box of windows ([start, end) window counts per axis) that share one shifted-window mask. */
export interface MaskClass {
  readonly starts: Triple;
  readonly ends: Triple;
  /** The region ids of the tokens of one of its windows ([tokens]); equal ids may attend to each other. */
  readonly ids: Float32Array;
  /** All its tokens lie in one region: the mask is 0 throughout. */
  readonly open: boolean;
}

/** The tokens' ids relabelled in order of first appearance: two windows have one mask iff these are equal. */
function maskPattern(ids: Float32Array): string {
  const seen = new Map<number, number>();
  return Array.from(ids, (id) => {
    if (!seen.has(id)) seen.set(id, seen.size);
    return seen.get(id);
  }).join(',');
}

/** Per axis, the window counts of the classes' boxes (maskClasses): [count - 1, 1] along a shifted axis, else [count]. */
export function maskClassCuts(g: WindowGeometry): number[][] {
  return g.counts.map((count, axis) => (g.shift[axis] > 0 && count > 1 ? [count - 1, 1] : [count]));
}

/**
 * The windows of a shifted geometry grouped by their mask: along an axis with a shift only the last window
 * straddles a region boundary (the regions start at padded - window, a window boundary, and padded - shift), so
 * the classes are the boxes "before the last" and "the last" per shifted axis, at most eight. Each box is checked
 * to hold a single mask. Attention over one class then takes one [n, n] mask for all its windows.
 */
export function maskClasses(g: WindowGeometry): MaskClass[] {
  const ids = shiftRegionIds(g);
  const [, ch, cw] = g.counts;
  const windowIds = (a: number, b: number, c: number): Float32Array => ids.subarray(((a * ch + b) * cw + c) * g.tokens, ((a * ch + b) * cw + c + 1) * g.tokens);
  const parts = maskClassCuts(g).map((sizes) => {
    let start = 0;
    return sizes.map((s) => [start, (start += s)]);
  });
  const classes: MaskClass[] = [];
  for (const [d0, d1] of parts[0]) {
    for (const [h0, h1] of parts[1]) {
      for (const [w0, w1] of parts[2]) {
        const first = windowIds(d0, h0, w0);
        const pattern = maskPattern(first);
        for (let a = d0; a < d1; a++) {
          for (let b = h0; b < h1; b++) {
            for (let c = w0; c < w1; c++) {
              if (maskPattern(windowIds(a, b, c)) !== pattern) throw new Error(`maskClasses: window (${a}, ${b}, ${c}) has another mask than its class`);
            }
          }
        }
        classes.push({ starts: [d0, h0, w0], ends: [d1, h1, w1], ids: Float32Array.from(first), open: first.every((id) => id === first[0]) });
      }
    }
  }
  return classes;
}
