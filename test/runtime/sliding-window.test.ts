/**
 * Sliding-window inference: the window layout and importance map against MONAI's recorded values
 * (../shared/reference/segmentation/sliding_window/case.json), blending against closed forms with synthetic
 * predictors, argmax ties, and the ONNX Runtime adapter on a real session with a fixed batch.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Graph } from '../../graph/core/graph';
import { neg } from '../../graph/ops/elementwise';
import { concat } from '../../graph/ops/slice';
import { importanceMap } from '../../runtime/segment/importance-map';
import { sessionPredictor } from '../../runtime/segment/session-predictor';
import { ChannelVolume, WindowPredictor, argmaxChannels, slidingWindowInference } from '../../runtime/segment/sliding-window';
import { SlidingWindowError, Triple, planWindows, windowOrigin } from '../../runtime/segment/window-plan';
import { cpuSession } from '../helpers/ort';
import { REFERENCE } from '../helpers/reference';

const CASE = path.join(REFERENCE, 'segmentation/sliding_window/case.json');
const haveCase = fs.existsSync(CASE);
if (!haveCase) console.log(`skipped the sliding-window layout checks against MONAI: no ${CASE}`);

interface SettingRecord {
  overlap: number;
  mode: 'constant' | 'gaussian';
  pad_before_after: [number, number][];
  padded_size: number[];
  scan_interval: number[];
  window_starts: number[][];
  windows: number;
  importance_map: { min: number; max: number; center: number };
}

(haveCase ? describe : describe.skip)('window layout and importance map equal MONAI (case.json)', () => {
  const record = haveCase ? (JSON.parse(fs.readFileSync(CASE, 'utf8')) as { shape: number[]; roi_size: number[]; settings: Record<string, SettingRecord> }) : undefined;
  const settings = record ? Object.entries(record.settings) : [];
  test.each(settings)('%s', (_name, setting) => {
    const shape = record!.shape.slice(2) as unknown as Triple;
    const roi = record!.roi_size as unknown as Triple;
    const plan = planWindows(shape, roi, setting.overlap);
    expect([0, 1, 2].map((a) => [plan.padBefore[a], plan.padAfter[a]])).toEqual(setting.pad_before_after);
    expect(plan.paddedSize).toEqual(setting.padded_size);
    expect(plan.scanInterval).toEqual(setting.scan_interval);
    expect(plan.starts).toEqual(setting.window_starts);
    expect(plan.windows).toBe(setting.windows);
    const map = importanceMap(roi, setting.mode);
    let min = Infinity;
    let max = -Infinity;
    for (const w of map) [min, max] = [Math.min(min, w), Math.max(max, w)];
    const centre = map[((roi[0] >> 1) * roi[1] + (roi[1] >> 1)) * roi[2] + (roi[2] >> 1)];
    expect([min, max, centre]).toEqual([setting.importance_map.min, setting.importance_map.max, setting.importance_map.center].map(Math.fround));
  });
});

describe('window plan', () => {
  test('starts are clamped inside, an axis equal to the roi gets one window, a smaller one is padded floor(d/2) first', () => {
    const plan = planWindows([97, 64, 10], 64, 0.75);
    expect(plan.starts).toEqual([[0, 16, 32, 33], [0], [0]]);
    expect(plan.scanInterval).toEqual([16, 64, 64]);
    expect([plan.padBefore, plan.padAfter]).toEqual([[0, 0, 27], [0, 0, 27]]);
    expect(planWindows([5, 5, 5], [8, 7, 6], 0.5).padBefore).toEqual([1, 1, 0]);
    // an interval that truncates to zero becomes 1
    expect(planWindows([6, 4, 4], [4, 4, 4], 0.9).starts[0]).toEqual([0, 1, 2]);
  });

  test('bad options are a SlidingWindowError', () => {
    expect(() => planWindows([10, 10, 10], 4, 1)).toThrow(SlidingWindowError);
    expect(() => planWindows([10, 10, 10], 0, 0.5)).toThrow(/roi/);
    expect(() => planWindows([10, 10, 10], [4, 4] as unknown as Triple, 0.5)).toThrow(/roi/);
  });
});

/** A [3, X, Y, Z] volume whose channels hold x + 1, y + 1 and z + 1 (so zero padding is recognisable). */
function coordinateVolume(shape: Triple): ChannelVolume {
  const [nx, ny, nz] = shape;
  const n = nx * ny * nz;
  const data = new Float32Array(3 * n);
  for (let x = 0, i = 0; x < nx; x++) {
    for (let y = 0; y < ny; y++) {
      for (let z = 0; z < nz; z++, i++) [data[i], data[n + i], data[2 * n + i]] = [x + 1, y + 1, z + 1];
    }
  }
  return { data, channels: 3, shape };
}

/** Echoes its input channels and records, per window, the smallest non-zero coordinate seen on each channel. */
function echoPredictor(seen: number[][]): WindowPredictor {
  return async (windows, count) => {
    const per = windows.length / count / 3;
    for (let k = 0; k < count; k++) {
      seen.push([0, 1, 2].map((c) => Math.min(...windows.subarray((k * 3 + c) * per, (k * 3 + c + 1) * per).filter((v) => v > 0)) - 1));
    }
    return windows.slice();
  };
}

describe('sliding-window inference', () => {
  test('an echoing model gives back the input exactly, windows visited in C order, padding seen as zeros', async () => {
    const shape: Triple = [41, 30, 9];
    const input = coordinateVolume(shape);
    const seen: number[][] = [];
    const progress: [number, number][] = [];
    const out = await slidingWindowInference(input, echoPredictor(seen), {
      roi: 16,
      overlap: 0.5,
      swBatchSize: 5,
      mode: 'gaussian',
      onProgress: (done, total) => progress.push([done, total]),
    });
    expect(out.shape).toEqual(shape);
    expect(out.channels).toBe(3);
    let worst = 0;
    for (let i = 0; i < out.data.length; i++) worst = Math.max(worst, Math.abs(out.data[i] - input.data[i]) / input.data[i]);
    expect(worst).toBeLessThan(1e-6);
    const plan = planWindows(shape, 16, 0.5);
    expect(plan.starts).toEqual([[0, 8, 16, 24, 25], [0, 8, 14], [0]]);
    // window origins in input coordinates: the z axis (9 < 16) is padded by 3 before, so its first real voxel is 0
    expect(seen).toEqual(Array.from({ length: plan.windows }, (_, w) => windowOrigin(plan, w)).map(([x, y]) => [x, y, 0]));
    expect(progress).toEqual([[5, 15], [10, 15], [15, 15]]);
  });

  test('blending: constant averages overlapping windows, gaussian follows the 1-D Gaussian ratio and the 1e-3 clamp', async () => {
    // two windows along x (starts 0 and 32), each predicting its own index everywhere
    const shape: Triple = [96, 64, 64];
    const input: ChannelVolume = { data: new Float32Array(96 * 64 * 64).fill(1), channels: 1, shape };
    let next = 0;
    const indexPredictor: WindowPredictor = async (windows, count) => {
      const out = new Float32Array(windows.length);
      for (let k = 0; k < count; k++) out.fill(next++, (k * out.length) / count, ((k + 1) * out.length) / count);
      return out;
    };
    const at = (v: ChannelVolume, x: number, y: number, z: number) => v.data[(x * 64 + y) * 64 + z];
    const constant = await slidingWindowInference(input, indexPredictor, { roi: 64, overlap: 0.5, swBatchSize: 2, mode: 'constant' });
    next = 0;
    const gaussian = await slidingWindowInference(input, indexPredictor, { roi: 64, overlap: 0.5, swBatchSize: 1, mode: 'gaussian' });
    const g = (t: number) => Math.exp(-((t - 31.5) ** 2) / (2 * 8 ** 2));
    // the 3-D weight on the line y = 31, z = 32, raised to 1e-3 where smaller (near the window's x ends)
    const w = (t: number) => Math.max(g(t) * g(31) * g(32), 1e-3);
    for (const x of [0, 31, 32, 40, 48, 63, 64, 95]) {
      const expectedConstant = x < 32 ? 0 : x < 64 ? 0.5 : 1;
      expect(at(constant, x, 31, 32)).toBe(expectedConstant);
      const [w0, w1] = [x < 64 ? w(x) : 0, x >= 32 ? w(x - 32) : 0];
      expect(at(gaussian, x, 31, 32)).toBeCloseTo(w1 / (w0 + w1), 6);
      // in the corner both weights fall below 1e-3 and are clamped equal: a plain average
      if (x >= 32 && x < 64) expect(at(gaussian, x, 0, 0)).toBeCloseTo(0.5, 6);
    }
    expect(at(gaussian, 40, 31, 32)).toBeLessThan(0.05);
    expect(at(constant, 40, 31, 32)).toBe(0.5);
  });

  test('the result does not depend on the sw batch size', async () => {
    const input = coordinateVolume([20, 19, 18]);
    const scaled: WindowPredictor = async (windows) => windows.map((v, i) => v * (((i % 1536) % 7) + 1));
    const a = await slidingWindowInference(input, scaled, { roi: 8, overlap: 0.6, swBatchSize: 1, mode: 'gaussian' });
    const b = await slidingWindowInference(input, scaled, { roi: 8, overlap: 0.6, swBatchSize: 4, mode: 'gaussian' });
    expect(Buffer.from(b.data.buffer).equals(Buffer.from(a.data.buffer))).toBe(true);
  });

  test('a predictor returning the wrong amount is a SlidingWindowError', async () => {
    const input = coordinateVolume([8, 8, 8]);
    await expect(slidingWindowInference(input, async (w) => w.subarray(1), { roi: 8 })).rejects.toThrow(SlidingWindowError);
    await expect(slidingWindowInference(input, async (w) => w, { roi: 8, swBatchSize: 0 })).rejects.toThrow(/sw batch/);
  });
});

describe('argmax over channels', () => {
  test('ties go to the lowest channel', () => {
    // 4 voxels, 3 channels: [1, 2, 2] -> 1; all equal -> 0; [0, 0, 5] -> 2; [3, -1, 3] -> 0
    const data = Float32Array.from([1, 0, 0, 3, 2, 0, 0, -1, 2, 0, 5, 3]);
    expect(Array.from(argmaxChannels({ data, channels: 3, shape: [1, 2, 2] }))).toEqual([1, 0, 2, 0]);
  });
});

describe('ONNX Runtime predictor', () => {
  test('a fixed-batch model gets the last partial sw batch padded, outputs cut back', async () => {
    const g = new Graph();
    const x = g.input('image', 'float32', [2, 1, 8, 8, 8]);
    const session = await cpuSession({ name: 'echo', inputs: [x], outputs: [{ name: 'logits', tensor: concat([x, neg(x)], 1) }] });
    const predictor = sessionPredictor(session, { roi: [8, 8, 8], inChannels: 1 });
    expect(predictor.fixedBatch).toBe(2);
    const input = coordinateVolume([13, 8, 8]);
    const single: ChannelVolume = { data: input.data.subarray(0, 13 * 64), channels: 1, shape: [13, 8, 8] };
    const calls: number[] = [];
    const out = await slidingWindowInference(single, async (w, n) => (calls.push(n), predictor.predict(w, n)), { roi: 8, overlap: 0.5, swBatchSize: 2 });
    expect(calls).toEqual([2, 1]);
    expect(Array.from(out.data.subarray(0, 13 * 64))).toEqual(Array.from(single.data));
    expect(Array.from(out.data.subarray(13 * 64))).toEqual(Array.from(single.data, (v) => -v));
    await expect(predictor.predict(new Float32Array(3 * 512), 3)).rejects.toThrow(/fixed batch 2/);
    expect(() => sessionPredictor(session, { roi: [8, 8, 16], inChannels: 1 })).toThrow(/windows are/);
  });
});
