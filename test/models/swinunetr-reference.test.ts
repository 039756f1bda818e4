import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { relativePositionIndex } from '../../graph/models/swin-windows';
import { SEGMENTER_MODEL, writeSwinUnetrArtifacts } from '../../graph/models/swinunetr/artifacts';
import { resolveSwinUnetrOptions } from '../../graph/models/swinunetr/options';
import { GradientResult, Trainer, loadArtifacts } from '../../runtime/session/trainer';
import { readSafetensors } from '../../io/weights/safetensors';
import { TensorMap } from '../../io/weights/tensor-map';
import { REFERENCE } from '../helpers/reference';
import { maxRelative, norm } from '../helpers/relative-error';
import { SHALLOW, gradientsOverBound } from '../helpers/swinunetr-tolerances';

/**
 * One DiceCE training step of SwinUNETR v2 (feature size 12, roi 64, 2 crops, 4 classes) through the written
 * artifacts, run by the trainer, against MONAI 1.3.2 / PyTorch in ../shared/reference/segmentation/tiny12_r64_b2_c4.
 */
const FIXTURE = path.join(REFERENCE, 'segmentation/tiny12_r64_b2_c4');
const present = fs.existsSync(path.join(FIXTURE, 'expected.safetensors'));
if (!present) console.log(`skipped SwinUNETR reference tests: no fixture at ${FIXTURE}`);
const describeFixture = present ? describe : describe.skip;

const data = (tensors: TensorMap, name: string): Float32Array => {
  const t = tensors.get(name);
  if (!t) throw new Error(`reference lacks ${name}`);
  return t.data as Float32Array;
};

describeFixture('SwinUNETR tiny (fs 12, roi 64, 2 crops, 4 classes) equals the MONAI DiceCE training step', () => {
  let tmp: string;
  let trainer: Trainer;
  let step: GradientResult;
  let expected: TensorMap;
  let weights: TensorMap;
  let inputs: TensorMap;
  let gradStats: Record<string, { l2: number }>;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinunetr-reference-'));
    const options = resolveSwinUnetrOptions({ preset: 'tiny', outChannels: 4, roi: 64, batchSize: 2 });
    writeSwinUnetrArtifacts(tmp, options, { logits: true });
    trainer = await loadArtifacts(tmp);
    weights = readSafetensors(path.join(FIXTURE, 'weights.safetensors'));
    for (const name of trainer.parameters.names()) trainer.parameters.set(name, data(weights, name));
    inputs = readSafetensors(path.join(FIXTURE, 'inputs.safetensors'));
    step = await trainer.computeGradients({ image: data(inputs, 'image'), label: data(inputs, 'label') });
    expected = readSafetensors(path.join(FIXTURE, 'expected.safetensors'));
    gradStats = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'case.json'), 'utf8')).grad_stats;
  }, 600_000);

  afterAll(async () => {
    await trainer?.release();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const extra = (name: string): Float32Array => step.extras[name].data as Float32Array;

  test('the file holds every trainable parameter of the graph and the relative-position index it computes', () => {
    const fileParameters = [...weights.values()].filter((t) => t.dtype === 'float32').map((t) => t.name);
    expect(new Set(fileParameters)).toEqual(new Set(trainer.parameters.names()));
    const buffers = [...weights.values()].filter((t) => t.dtype === 'int64');
    expect(buffers).toHaveLength(8);
    const index = relativePositionIndex(7);
    for (const b of buffers) expect((b.data as BigInt64Array).every((v, i) => v === index[i])).toBe(true);
  });

  test('logits (head, L2, per item and class sums) within 1e-4 relative', () => {
    const logits = extra('logits');
    expect([...step.extras.logits.dims]).toEqual([2, 4, 64, 64, 64]);
    const sums = new Float64Array(8);
    const voxels = 64 ** 3;
    for (let bc = 0; bc < 8; bc++) for (let v = 0; v < voxels; v++) sums[bc] += logits[bc * voxels + v];
    const l2 = norm(logits);
    const expectedL2 = data(expected, 'logits.l2')[0];
    expect(maxRelative(logits.subarray(0, 4096), data(expected, 'logits.head'))).toBeLessThan(1e-4);
    expect(Math.abs(l2 - expectedL2) / expectedL2).toBeLessThan(1e-4);
    const sumErrors = Array.from(data(expected, 'logits.sum_bc'), (e, i) => Math.abs(sums[i] - e) / Math.abs(e));
    expect(Math.max(...sumErrors)).toBeLessThan(1e-4);
  });

  test('loss, its Dice and CE parts and the Dice of each item and foreground class within 1e-4 relative', () => {
    const relative = (ours: number, theirs: number) => Math.abs(ours - theirs) / Math.abs(theirs);
    expect(relative(step.loss, data(expected, 'loss')[0])).toBeLessThan(1e-4);
    expect(relative(extra('loss.dice')[0], data(expected, 'loss.dice')[0])).toBeLessThan(1e-4);
    expect(relative(extra('loss.ce')[0], data(expected, 'loss.ce')[0])).toBeLessThan(1e-4);
    expect([...step.extras['loss.dice.per_item_class'].dims]).toEqual([2, 3]);
    const perItemClass = data(expected, 'loss.dice.per_item_class');
    expect(Math.max(...Array.from(extra('loss.dice.per_item_class'), (v, i) => relative(v, perItemClass[i])))).toBeLessThan(1e-4);
  });

  test('every gradient within 1e-3 relative L2 (the deep ones and one transposed-conv head within the bounds argued from float64)', () => {
    const names = Object.keys(gradStats);
    expect(names).toHaveLength(159);
    expect(new Set(step.gradients.keys())).toEqual(new Set(names));
    expect(gradientsOverBound(names, (n) => step.gradients.get(n)! as Float32Array, expected, gradStats)).toEqual({ norm: [], head: [] });
    expect(names.filter((n) => SHALLOW.test(n))).toHaveLength(17);
  });

  test('the segmenter forward model gives the training model\'s logits on the same image', async () => {
    const out = await trainer.forward(SEGMENTER_MODEL, { image: data(inputs, 'image') });
    const logits = out.logits as ort.Tensor;
    expect([...logits.dims]).toEqual([2, 4, 64, 64, 64]);
    expect(maxRelative(logits.data as Float32Array, extra('logits'))).toBeLessThan(1e-6);
  }, 300_000);
});
