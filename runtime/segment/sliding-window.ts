/**
 * Sliding-window inference with MONAI 1.3.2's `sliding_window_inference` semantics over one multi-channel volume:
 * zero padding to the roi, windows in C order `swBatchSize` at a time through an async predictor, blending by the
 * importance map (sum of w * p over sum of w, accumulated in float32 in window order), cropping back. The model is
 * behind `WindowPredictor`, so nothing here knows ONNX Runtime.
 */
import { BlendMode, importanceMap } from './importance-map';
import { SlidingWindowError, Triple, WindowPlan, planWindows, windowOrigin } from './window-plan';

/** C-order [channels, X, Y, Z] float32 data. */
export interface ChannelVolume {
  readonly data: Float32Array;
  readonly channels: number;
  readonly shape: Triple;
}

/**
 * Runs the model on `count` windows, given as C-order [count, Cin, rx, ry, rz]; resolves to [count, Cout, rx, ry, rz].
 */
export type WindowPredictor = (windows: Float32Array, count: number) => Promise<Float32Array>;

export interface SlidingWindowOptions {
  readonly roi: number | Triple;
  /** Fraction of the roi shared by neighbouring windows, in [0, 1); MONAI's default 0.25. */
  readonly overlap?: number;
  /** Windows per predictor call (the last call may get fewer); default 1. */
  readonly swBatchSize?: number;
  /** Default `constant`. */
  readonly mode?: BlendMode;
  /** Gaussian sigma as a fraction of the roi; default 0.125. */
  readonly sigmaScale?: number;
  /** Called after each predictor call with the windows done so far and the total. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** The blended predictor output over the input's grid, [Cout, X, Y, Z]. */
export async function slidingWindowInference(input: ChannelVolume, predictor: WindowPredictor, options: SlidingWindowOptions): Promise<ChannelVolume> {
  const plan = planWindows(input.shape, options.roi, options.overlap ?? 0.25);
  const batch = options.swBatchSize ?? 1;
  if (!Number.isInteger(batch) || batch < 1) throw new SlidingWindowError(`sw batch size must be a positive integer, got ${batch}`);
  if (input.data.length !== input.channels * voxels(input.shape)) {
    throw new SlidingWindowError(`input holds ${input.data.length} values, not ${input.channels} x ${input.shape.join('x')}`);
  }
  const weights = importanceMap(plan.roi, options.mode ?? 'constant', options.sigmaScale);
  const windowVoxels = voxels(plan.roi);
  const count = new Float32Array(voxels(plan.paddedSize));
  for (let w = 0; w < plan.windows; w++) addWindow(count, plan.paddedSize, windowOrigin(plan, w), plan.roi, weights, undefined);
  let sum: Float32Array | undefined;
  let channels = 0;
  for (let first = 0; first < plan.windows; first += batch) {
    const n = Math.min(batch, plan.windows - first);
    const windows = new Float32Array(n * input.channels * windowVoxels);
    for (let k = 0; k < n; k++) {
      const target = windows.subarray(k * input.channels * windowVoxels, (k + 1) * input.channels * windowVoxels);
      extractWindow(input, plan, windowOrigin(plan, first + k), target);
    }
    const output = await predictor(windows, n);
    if (sum === undefined) {
      channels = output.length / (n * windowVoxels);
      if (!Number.isInteger(channels) || channels < 1) {
        throw new SlidingWindowError(`the model returned ${output.length} values for ${n} windows of ${plan.roi.join('x')}`);
      }
      sum = new Float32Array(channels * count.length);
    } else if (output.length !== n * channels * windowVoxels) {
      throw new SlidingWindowError(`the model returned ${output.length} values for ${n} windows, expected ${n * channels * windowVoxels}`);
    }
    for (let k = 0; k < n; k++) {
      const origin = windowOrigin(plan, first + k);
      for (let c = 0; c < channels; c++) {
        const p = output.subarray((k * channels + c) * windowVoxels, (k * channels + c + 1) * windowVoxels);
        addWindow(sum.subarray(c * count.length, (c + 1) * count.length), plan.paddedSize, origin, plan.roi, weights, p);
      }
    }
    options.onProgress?.(first + n, plan.windows);
  }
  const blended = sum as Float32Array;
  for (let c = 0; c < channels; c++) {
    const channel = blended.subarray(c * count.length, (c + 1) * count.length);
    for (let i = 0; i < count.length; i++) channel[i] /= count[i];
  }
  return { data: cropPadding(blended, channels, plan), channels, shape: input.shape };
}

/**
 * Per voxel the channel with the largest value, ties to the lowest channel (as `torch.argmax`), as C-order
 * [X, Y, Z] class indices.
 */
export function argmaxChannels(volume: ChannelVolume): Uint8Array | Uint16Array {
  const n = voxels(volume.shape);
  const labels = volume.channels <= 256 ? new Uint8Array(n) : new Uint16Array(n);
  const best = volume.data.slice(0, n);
  for (let c = 1; c < volume.channels; c++) {
    const channel = volume.data.subarray(c * n, (c + 1) * n);
    for (let i = 0; i < n; i++) {
      if (channel[i] > best[i]) {
        best[i] = channel[i];
        labels[i] = c;
      }
    }
  }
  return labels;
}

function voxels(shape: Triple): number {
  return shape[0] * shape[1] * shape[2];
}

/**
 * Adds w * p (float32 products), or w alone without `p`, over the roi-sized block at `origin` of a [X, Y, Z] field.
 */
function addWindow(field: Float32Array, size: Triple, origin: Triple, roi: Triple, weights: Float32Array, p: Float32Array | undefined): void {
  const [, sy, sz] = size;
  const [rx, ry, rz] = roi;
  let i = 0;
  for (let x = 0; x < rx; x++) {
    for (let y = 0; y < ry; y++) {
      const row = ((origin[0] + x) * sy + origin[1] + y) * sz + origin[2];
      if (p === undefined) {
        for (let z = 0; z < rz; z++, i++) field[row + z] += weights[i];
      } else {
        for (let z = 0; z < rz; z++, i++) field[row + z] += Math.fround(p[i] * weights[i]);
      }
    }
  }
}

/** Copies the roi-sized block at padded-space `origin` of every input channel into `target`, zeros in the padding. */
function extractWindow(input: ChannelVolume, plan: WindowPlan, origin: Triple, target: Float32Array): void {
  const [nx, ny, nz] = input.shape;
  const [rx, ry, rz] = plan.roi;
  const x0 = origin[0] - plan.padBefore[0];
  const y0 = origin[1] - plan.padBefore[1];
  const z0 = origin[2] - plan.padBefore[2];
  const zFrom = Math.max(0, -z0);
  const zTo = Math.min(rz, nz - z0);
  for (let c = 0; c < input.channels; c++) {
    for (let x = 0; x < rx; x++) {
      const sx = x0 + x;
      if (sx < 0 || sx >= nx) continue;
      for (let y = 0; y < ry; y++) {
        const sy = y0 + y;
        if (sy < 0 || sy >= ny) continue;
        const source = ((c * nx + sx) * ny + sy) * nz + z0;
        const dest = ((c * rx + x) * ry + y) * rz;
        target.set(input.data.subarray(source + zFrom, source + zTo), dest + zFrom);
      }
    }
  }
}

/** The [C, X, Y, Z] part of a padded [C, PX, PY, PZ] field that covers the input. */
function cropPadding(padded: Float32Array, channels: number, plan: WindowPlan): Float32Array {
  if (plan.paddedSize.every((s, a) => s === plan.shape[a])) return padded;
  const [nx, ny, nz] = plan.shape;
  const [, py, pz] = plan.paddedSize;
  const [bx, by, bz] = plan.padBefore;
  const out = new Float32Array(channels * nx * ny * nz);
  const paddedVoxels = voxels(plan.paddedSize);
  for (let c = 0; c < channels; c++) {
    for (let x = 0; x < nx; x++) {
      for (let y = 0; y < ny; y++) {
        const source = c * paddedVoxels + ((x + bx) * py + y + by) * pz + bz;
        out.set(padded.subarray(source, source + nz), ((c * nx + x) * ny + y) * nz);
      }
    }
  }
  return out;
}
