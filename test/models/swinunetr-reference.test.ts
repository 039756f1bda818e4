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
import { maxRelative, norm, overBound, relativeL2 } from '../helpers/relative-error';

/**
 * One DiceCE training step of SwinUNETR v2 (feature size 12, roi 64, 2 crops, 4 classes) through the written
 * artifacts, run by the trainer, against MONAI 1.3.2 / PyTorch in ../shared/reference/segmentation/tiny12_r64_b2_c4.
 */
const FIXTURE = path.join(REFERENCE, 'segmentation/tiny12_r64_b2_c4');
const present = fs.existsSync(path.join(FIXTURE, 'expected.safetensors'));
if (!present) console.log(`skipped SwinUNETR reference tests: no fixture at ${FIXTURE}`);
const describeFixture = present ? describe : describe.skip;

/**
 * Gradients of the deep part (SwinViT stages, encoder3/4/10, decoder5..3) that float32 does not pin to 1e-3: on
 * grad_head they are 1e-3 .. 1.5e-2 from PyTorch (largest swinViT.layers4.0.blocks.1.attn.proj.weight, whose norm
 * matches to 3e-4), while the shallow path (patch embedding, encoder1/2, decoder1/2, out) is within 1e-3 (largest
 * 9.8e-4, decoder2.transp_conv.conv.weight).
 * Measured, not assumed:
 * - Our step is deterministic, but feeding it the reference weights changed by one float32 rounding (relative
 *   1.2e-7, random signs) moves these same gradients by 1e-3 .. 7e-3 relative L2 (the shallow ones by < 6e-4): the
 *   distance from PyTorch is of the size of float32's own spread here. Perturbing only encoder10 and decoder5
 *   reproduces the whole spread (median 2e-3).
 * - A float64 recomputation of that bottleneck (encoder10 on hidden4 at 2^3 voxels, decoder5 at 4^3, from our
 *   hidden3, hidden4 and the cotangent at its output; test/graph/conv-reference.ts convolutions) matches our float32
 *   weight and input gradients to 9e-7 and moves by < 3e-7 under the same perturbation of its inputs or weights, and
 *   no LeakyReLU input there is within 1e-5 of the kink: the bottleneck computes right and is well-conditioned on its
 *   own, so the spread must come in with the cotangent it receives from the decoders above it (where exactly is not
 *   located: perturbing decoder4..2 instead moves the deep gradients by < 2e-5). A float64 run of the whole model,
 *   which would locate it and rank the two float32 results, is not possible here: ONNX Runtime's CPU provider has
 *   no float64 Conv.
 */
const SHALLOW = /^(swinViT\.patch_embed\.|encoder1\.|encoder2\.|decoder1\.|decoder2\.|out\.)/;
const DEEP_BOUND = 2e-2;
const gradientBound = (name: string): number => (SHALLOW.test(name) ? 1e-3 : DEEP_BOUND);

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

  test('every gradient within 1e-3 relative L2 (the deep, float32-ill-conditioned ones within the documented bound)', () => {
    const names = Object.keys(gradStats);
    expect(names).toHaveLength(159);
    expect(new Set(step.gradients.keys())).toEqual(new Set(names));
    const normError = (n: string) => Math.abs(norm(step.gradients.get(n)!) - gradStats[n].l2) / gradStats[n].l2;
    const headError = (n: string) => {
      const head = data(expected, `grad_head.${n}`);
      // A head that is all zeros (table rows no window of the last stage reaches) is measured on the gradient's scale.
      return norm(head) > 0 ? relativeL2(step.gradients.get(n)!, head) : norm(step.gradients.get(n)!.subarray(0, head.length)) / gradStats[n].l2;
    };
    expect(overBound(names, normError, gradientBound)).toEqual([]);
    expect(overBound(names, headError, gradientBound)).toEqual([]);
    expect(names.filter((n) => SHALLOW.test(n))).toHaveLength(17);
  });

  test('the segmenter forward model gives the training model\'s logits on the same image', async () => {
    const out = await trainer.forward(SEGMENTER_MODEL, { image: data(inputs, 'image') });
    const logits = out.logits as ort.Tensor;
    expect([...logits.dims]).toEqual([2, 4, 64, 64, 64]);
    expect(maxRelative(logits.data as Float32Array, extra('logits'))).toBeLessThan(1e-6);
  }, 300_000);
});
