import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { stateDictEntries } from '../../graph/models/swinunetr-encoder';
import { LOGITS_OUTPUT, SEGMENTER_MODEL, writeSwinUnetrArtifacts } from '../../graph/models/swinunetr/artifacts';
import { buildSegmenterGraph } from '../../graph/models/swinunetr/model';
import { SWINUNETR_LEARNING_RATE, resolveSwinUnetrOptions } from '../../graph/models/swinunetr/options';
import { INITIAL_WEIGHTS_FILE } from '../../graph/models/voco/artifacts';
import { ArtifactManifest, readManifest } from '../../graph/onnx/manifest';
import { Trainer, loadArtifacts } from '../../runtime/session/trainer';
import { readSafetensors } from '../../io/weights/safetensors';
import { Rng } from '../../common/rng';
import { relativeL2OfAny } from '../helpers/relative-error';

// Tiny preset at roi 32 with 2 input channels and 3 classes: small enough to run steps in a test.
const OPTIONS = resolveSwinUnetrOptions({ preset: 'tiny', inChannels: 2, outChannels: 3, roi: 32, batchSize: 2 });
const VOXELS = 32 ** 3;

function batch(seed: number): { image: Float32Array; label: Float32Array } {
  const rng = new Rng(seed);
  const image = Float32Array.from({ length: 2 * 2 * VOXELS }, () => rng.uniform());
  // Class by thresholds on the first channel, so the image predicts the label.
  const label = new Float32Array(2 * VOXELS);
  for (let n = 0; n < 2; n++) for (let v = 0; v < VOXELS; v++) label[n * VOXELS + v] = Math.floor(image[n * 2 * VOXELS + v] * 2.999);
  return { image, label };
}

describe('SwinUNETR artifacts', () => {
  let dir: string;
  let manifest: ArtifactManifest;
  let trainer: Trainer;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swinunetr-artifacts-'));
    manifest = writeSwinUnetrArtifacts(dir, OPTIONS, { seed: 4 });
    trainer = await loadArtifacts(dir, { seed: 1 });
  }, 300_000);

  afterAll(async () => {
    await trainer?.release();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the folder holds the training, eval, optimizer and segmenter models, the manifest and the initial weights', () => {
    expect(fs.readdirSync(dir).sort()).toEqual(
      [INITIAL_WEIGHTS_FILE, 'eval_model.onnx', 'manifest.json', 'optimizer_model.onnx', `${SEGMENTER_MODEL}.onnx`, 'training_model.onnx'].sort(),
    );
    expect(readManifest(dir)).toEqual(JSON.parse(JSON.stringify(manifest)));
  });

  test('the manifest names the batch inputs, the loss parts, one gradient per parameter and upstream AdamW', () => {
    const io = (entries: readonly { name: string; shape: readonly number[]; role: string }[], role: string) =>
      entries.filter((e) => e.role === role).map((e) => [e.name, [...e.shape]]);
    const training = manifest.models.training;
    expect(io(training.inputs, 'input')).toEqual([
      ['image', [2, 2, 32, 32, 32]],
      ['label', [2, 1, 32, 32, 32]],
    ]);
    expect(io(training.outputs, 'output')).toEqual([
      ['loss', []],
      ['loss.dice', []],
      ['loss.ce', []],
      ['loss.dice.per_item_class', [2, 2]],
    ]);
    const parameters = manifest.parameters.map((p) => p.name);
    expect(io(training.outputs, 'gradient').map(([n]) => n)).toEqual(parameters.map((p) => `${p}_grad`));
    expect(manifest.parameters.every((p) => p.trainable)).toBe(true);
    expect(io(manifest.models.eval.outputs, 'gradient')).toEqual([]);
    expect(manifest.optimizer).toMatchObject({ kind: 'adamw', weightDecay: 1e-5, amsgrad: false, betas: [0.9, 0.999], eps: 1e-8 });
    // The segmenter is built with one window; its batch axis is symbolic.
    const segmenter = manifest.models.forward[SEGMENTER_MODEL];
    expect(io(segmenter.inputs, 'input')).toEqual([['image', [1, 2, 32, 32, 32]]]);
    expect(segmenter.outputs.map((o) => [o.name, [...o.shape], o.batchDim])).toEqual([[LOGITS_OUTPUT, [1, 3, 32, 32, 32], 'batch']]);
    expect(segmenter.inputs.find((i) => i.name === 'image')!.batchDim).toBe('batch');
    expect(segmenter.inputs.filter((i) => i.role === 'parameter').map((i) => i.name)).toEqual(parameters);
  });

  test('the initial weights are the MONAI state dict in PyTorch order, relative-position buffers included', () => {
    const weights = readSafetensors(path.join(dir, INITIAL_WEIGHTS_FILE));
    const entries = stateDictEntries(buildSegmenterGraph(OPTIONS));
    expect([...weights.values()].map((t) => [t.name, [...t.shape], t.dtype])).toEqual(entries.map((e) => [e.name, [...e.shape], e.dtype]));
    expect(weights.get('out.conv.conv.bias')!.shape).toEqual([3]);
    expect(weights.get('encoder1.layer.conv3.conv.weight')!.shape).toEqual([12, 2, 1, 1, 1]);
  });

  test('steps at the upstream learning rate lower the loss on a fixed batch; eval gives the training loss', async () => {
    const fixed = batch(3);
    const evaluated = await trainer.evaluate(fixed);
    const first = await trainer.step(fixed, { lr: SWINUNETR_LEARNING_RATE });
    expect(first.loss).toBeCloseTo(evaluated.loss, 5);
    expect(Number(first.extras['loss.dice'].data[0]) + Number(first.extras['loss.ce'].data[0])).toBeCloseTo(first.loss, 5);
    let last = first.loss;
    for (let i = 0; i < 3; i++) last = (await trainer.step(fixed, { lr: SWINUNETR_LEARNING_RATE })).loss;
    expect(Number.isFinite(last)).toBe(true);
    expect(last).toBeLessThan(first.loss);
  }, 300_000);

  test('the segmenter takes any number of windows, each as it would alone', async () => {
    const { image } = batch(5);
    const window = 2 * VOXELS;
    const three = Float32Array.from({ length: 3 * window }, (_, i) => image[i % image.length] * (i < 2 * window ? 1 : -1));
    const together = await trainer.forward(SEGMENTER_MODEL, { image: three });
    expect(together[LOGITS_OUTPUT].dims).toEqual([3, 3, 32, 32, 32]);
    const all = together[LOGITS_OUTPUT].data as Float32Array;
    for (let w = 0; w < 3; w++) {
      const alone = (await trainer.forward(SEGMENTER_MODEL, { image: three.subarray(w * window, (w + 1) * window) }))[LOGITS_OUTPUT].data as Float32Array;
      const part = all.subarray(w * alone.length, (w + 1) * alone.length);
      expect(Math.max(...alone.map((v, i) => Math.abs(v - part[i])))).toBeLessThan(1e-5);
    }
    await expect(trainer.forward(SEGMENTER_MODEL, { image: new Float32Array(window + 1) })).rejects.toThrow('batch input image: 65537 values are not whole rows of float32[batch, 2, 32, 32, 32]');
  }, 300_000);
});

describe('SwinUNETR step in parts of the crops (gradient accumulation)', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  test('one crop per run gives the loss, loss parts, per-item Dice and gradients of one run on both crops', async () => {
    const open = async (cropsPerRun?: number) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swinunetr-accumulate-'));
      dirs.push(dir);
      const manifest = writeSwinUnetrArtifacts(dir, OPTIONS, { seed: 4, cropsPerRun });
      return { manifest, trainer: await loadArtifacts(dir, { seed: 1 }) };
    };
    const whole = await open();
    const parts = await open(1);
    expect(whole.manifest.accumulation).toBeUndefined();
    expect(parts.manifest.accumulation).toEqual({ rows: 2, rowsPerRun: 1 });
    expect(parts.manifest.models.training.inputs.find((i) => i.name === 'image')!.shape).toEqual([1, 2, 32, 32, 32]);

    const fixed = batch(7);
    const a = await whole.trainer.computeGradients(fixed);
    const b = await parts.trainer.computeGradients(fixed);
    expect(b.loss).toBeCloseTo(a.loss, 5);
    for (const name of ['loss.dice', 'loss.ce']) expect(b.extras[name].data[0]).toBeCloseTo(a.extras[name].data[0] as number, 5);
    expect(b.extras['loss.dice.per_item_class'].dims).toEqual([2, 2]);
    expect(relativeL2OfAny(b.extras['loss.dice.per_item_class'].data as Float32Array, a.extras['loss.dice.per_item_class'].data as Float32Array)).toBeLessThan(1e-5);
    let worst = 0;
    for (const [name, g] of a.gradients) worst = Math.max(worst, relativeL2OfAny(b.gradients.get(name)!, g));
    // Float32 sums in another order (per-crop means, then their mean): the VoCo pieces' test sees 8.5e-6 likewise.
    expect(worst).toBeLessThan(5e-5);
    await Promise.all([whole.trainer.release(), parts.trainer.release()]);
  }, 300_000);

  test('a crops-per-run that does not divide the batch is refused in one line', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swinunetr-accumulate-'));
    dirs.push(dir);
    expect(() => writeSwinUnetrArtifacts(dir, OPTIONS, { cropsPerRun: 3 })).toThrow(/crops per run 3 must be a whole number >= 1 that divides the 2 crops of a step/);
  });
});
