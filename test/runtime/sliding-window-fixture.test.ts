/**
 * The tiny SwinUNETR of ../shared/reference/segmentation/tiny12_r64_b2_c4 through sliding-window inference
 * (../shared/reference/segmentation/sliding_window/), both settings, against MONAI's stitched output: logits at
 * the sampled coordinates, their L2 norm and per-channel sums (relative 1e-4), and the argmax labels (at most 0.1%
 * of the voxels differ, each only where our two largest outputs are within 1e-4).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { ConstantData } from '../../graph/core/graph';
import { buildSegmenterGraph } from '../../graph/models/swinunetr/model';
import { resolveSwinUnetrOptions } from '../../graph/models/swinunetr/options';
import { writeForwardModel } from '../../graph/onnx/artifacts';
import { createSession } from '../../runtime/session/providers';
import { sessionPredictor } from '../../runtime/segment/session-predictor';
import { ChannelVolume, argmaxChannels, slidingWindowInference } from '../../runtime/segment/sliding-window';
import { BlendMode } from '../../runtime/segment/importance-map';
import { readSafetensors } from '../../io/weights/safetensors';
import { REFERENCE } from '../helpers/reference';

const FIXTURE = path.join(REFERENCE, 'segmentation/sliding_window');
const WEIGHTS = path.join(REFERENCE, 'segmentation/tiny12_r64_b2_c4/weights.safetensors');
const haveFixture = fs.existsSync(path.join(FIXTURE, 'expected.safetensors')) && fs.existsSync(WEIGHTS);
if (!haveFixture) console.log(`skipped the SwinUNETR sliding-window fixture: no reference files at ${FIXTURE}`);

/**
 * The fixture's model as a forward ONNX file, image [batch, 1, 64, 64, 64] -> logits [batch, 4, 64, 64, 64], with
 * the state dict baked in: the segmenter graph's parameters carry MONAI's state-dict names.
 */
function forwardModel(file: string, batch: number): void {
  const net = buildSegmenterGraph(resolveSwinUnetrOptions({ preset: 'tiny', inChannels: 1, outChannels: 4, roi: 64, batchSize: batch }), batch);
  const state = readSafetensors(WEIGHTS);
  const weights = new Map<string, ConstantData>([...state].map(([name, t]) => [name, t.data as ConstantData]));
  const unnamed = net.graph.parameters.map((p) => p.tensor.name).filter((name) => !weights.has(name));
  if (unnamed.length > 0) throw new Error(`parameters without a state-dict value: ${unnamed.slice(0, 5).join(', ')}`);
  writeForwardModel(file, { inputs: [net.image], outputs: { logits: net.logits }, weights });
}

const relative = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) [diff, scale] = [Math.max(diff, Math.abs(a[i] - b[i])), Math.max(scale, Math.abs(b[i]))];
  return diff / scale;
};

(haveFixture ? describe : describe.skip)('tiny SwinUNETR through the sliding window equals MONAI', () => {
  let tmp: string;
  let image: ChannelVolume;
  let expected: ReturnType<typeof readSafetensors>;
  let predict: (w: Float32Array, n: number) => Promise<Float32Array>;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sw-fixture-'));
    const file = path.join(tmp, 'swinunetr.onnx');
    forwardModel(file, 2);
    predict = sessionPredictor(await createSession(file), { roi: [64, 64, 64], inChannels: 1 }).predict;
    const input = readSafetensors(path.join(FIXTURE, 'inputs.safetensors')).get('image')!;
    image = { data: input.data as Float32Array, channels: 1, shape: [input.shape[2], input.shape[3], input.shape[4]] };
    expected = readSafetensors(path.join(FIXTURE, 'expected.safetensors'));
  }, 600_000);
  afterAll(() => tmp && fs.rmSync(tmp, { recursive: true, force: true }));

  test.each([
    ['o75_constant', 0.75, 'constant'],
    ['o50_gaussian', 0.5, 'gaussian'],
  ] as const)('%s', async (setting, overlap, mode: BlendMode) => {
    const out = await slidingWindowInference(image, predict, { roi: 64, overlap, swBatchSize: 2, mode });
    const [nx, ny, nz] = image.shape;
    const n = nx * ny * nz;
    const coords = expected.get('coords')!.data as BigInt64Array;
    const samples: number[] = [];
    for (let k = 0; k < coords.length / 3; k++) {
      const voxel = (Number(coords[3 * k]) * ny + Number(coords[3 * k + 1])) * nz + Number(coords[3 * k + 2]);
      for (let c = 0; c < out.channels; c++) samples.push(out.data[c * n + voxel]);
    }
    expect(relative(samples, expected.get(`logits.${setting}.samples`)!.data as Float32Array)).toBeLessThan(1e-4);
    let l2 = 0;
    const sums = new Array<number>(out.channels).fill(0);
    for (let c = 0; c < out.channels; c++) for (let i = 0; i < n; i++) [l2, sums[c]] = [l2 + out.data[c * n + i] ** 2, sums[c] + out.data[c * n + i]];
    expect(relative([Math.sqrt(l2)], expected.get(`logits.${setting}.l2`)!.data as Float32Array)).toBeLessThan(1e-4);
    expect(relative(sums, expected.get(`logits.${setting}.sum_c`)!.data as Float32Array)).toBeLessThan(1e-4);

    const labels = argmaxChannels(out);
    const reference = expected.get(`labels.${setting}`)!.data as Uint8Array;
    const differing: number[] = [];
    for (let i = 0; i < n; i++) if (labels[i] !== reference[i]) differing.push(i);
    expect(differing.length).toBeLessThanOrEqual(0.001 * n);
    for (const i of differing) {
      const values = Array.from({ length: out.channels }, (_, c) => out.data[c * n + i]).sort((a, b) => b - a);
      expect(values[0] - values[1]).toBeLessThan(1e-4);
    }
  }, 600_000);
});
