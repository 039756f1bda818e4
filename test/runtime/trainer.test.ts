import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { Rng } from '../../common/rng';
import { initialValues } from '../../graph/nn/init';
import { writeArtifacts } from '../../graph/onnx/artifacts';
import { OptimizerConfig } from '../../graph/optim/config';
import { exportForwardModel } from '../../runtime/session/export';
import { clipGradNorm, globalGradNorm, gradientPolicy } from '../../runtime/session/gradient-hooks';
import { BatchError, Trainer, loadArtifacts } from '../../runtime/session/trainer';
import { TensorValueError } from '../../runtime/session/tensor-store';
import { MlpShape, SMALL, buildMlp, regressionBatch } from './mlp';

const made: string[] = [];
afterAll(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function artifacts(dtype: 'float32' | 'float64', optimizer: OptimizerConfig, shape: MlpShape = SMALL): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-trainer-'));
  made.push(dir);
  const mlp = buildMlp(dtype, shape);
  writeArtifacts(dir, { graph: mlp.graph, loss: mlp.loss, extras: { prediction: mlp.prediction }, optimizer, forward: { encoder: { outputs: { features: mlp.hidden } } } });
  return dir;
}

describe('Trainer over written artifacts', () => {
  test('initial values are drawn from the InitSpecs in manifest order, as the graph would draw them', async () => {
    const trainer = await loadArtifacts(artifacts('float32', { kind: 'adamw' }), { seed: 11 });
    const expected = initialValues(buildMlp('float32').graph, new Rng(11));
    for (const [t, v] of expected) expect(Array.from(trainer.parameters.get(t.name) as Float32Array)).toEqual(Array.from(v as Float32Array));
    expect(trainer.optimizerState.names()).toHaveLength(4 * 2);
    expect(Array.from(trainer.parameters.get('offset') as Float32Array)).toEqual([0.1, 0.2].map(Math.fround));
    await trainer.release();
  });

  test('training-model gradients match central differences of the eval model on the whole MLP (float64)', async () => {
    const trainer = await Trainer.load(artifacts('float64', { kind: 'sgd' }), { seed: 2, threads: 1 });
    const batch = regressionBatch('float64');
    const { loss, gradients } = await trainer.computeGradients(batch);
    expect((await trainer.evaluate(batch)).loss).toBeCloseTo(loss, 12);
    const eps = 1e-6;
    let worst = 0;
    for (const [name, grad] of gradients) {
      const original = trainer.parameters.get(name) as Float64Array;
      for (let i = 0; i < original.length; i++) {
        const probe = (delta: number) => {
          const moved = original.slice();
          moved[i] += delta;
          trainer.parameters.set(name, moved);
          return trainer.evaluate(batch).then((r) => r.loss);
        };
        const numeric = ((await probe(eps)) - (await probe(-eps))) / (2 * eps);
        worst = Math.max(worst, Math.abs(grad[i] - numeric) / (Math.abs(numeric) + 1e-8));
      }
      trainer.parameters.set(name, original);
    }
    expect(gradients.size).toBe(4);
    expect(worst).toBeLessThan(1e-6);
    await trainer.release();
  });

  test.each<[string, OptimizerConfig, number]>([
    ['AdamW', { kind: 'adamw', weightDecay: 0 }, 0.02],
    ['SGD with momentum', { kind: 'sgd', momentum: 0.9 }, 0.05],
  ])('%s drives the regression to near-zero loss in a few hundred steps', async (_label, optimizer, lr) => {
    const shape = { batch: 16, inFeatures: 3, hidden: 16, outFeatures: 2 };
    const trainer = await Trainer.load(artifacts('float32', optimizer, shape), { seed: 4, threads: 1 });
    const batch = regressionBatch('float32', shape, 9);
    const first = (await trainer.evaluate(batch)).loss;
    let last = first;
    for (let i = 0; i < 300; i++) last = (await trainer.step(batch, { lr })).loss;
    expect(trainer.stepCount).toBe(300);
    expect(first).toBeGreaterThan(0.3);
    expect(last).toBeLessThan(1e-3 * first);
    await trainer.release();
  });

  test('a step updates parameters and moments, leaves state alone, and a skipping hook changes nothing', async () => {
    const trainer = await Trainer.load(artifacts('float32', { kind: 'adamw', amsgrad: true }), { threads: 1 });
    const batch = regressionBatch('float32');
    const before = trainer.parameters.snapshot();
    const beforeCopy = new Map([...before].map(([k, v]) => [k, Array.from(v as Float32Array)]));
    const skipped = await trainer.step(batch, { lr: 0.1, gradientHook: () => 'skip' });
    expect(skipped).toMatchObject({ skipped: true, step: 0 });
    expect(trainer.parameters.get('fc1.weight')).toBe(before.get('fc1.weight'));

    const result = await trainer.step(batch, { lr: 0.1 });
    expect(result).toMatchObject({ skipped: false, step: 1 });
    expect(result.extras.prediction.dims).toEqual([8, 2]);
    expect(Array.from(trainer.parameters.get('fc1.weight') as Float32Array)).not.toEqual(beforeCopy.get('fc1.weight'));
    expect(Array.from(trainer.parameters.get('scale') as Float32Array)).toEqual(beforeCopy.get('scale'));
    // Adam's first step moves every weight by about lr.
    const moved = (trainer.parameters.get('fc2.bias') as Float32Array).map((v, i) => v - beforeCopy.get('fc2.bias')![i]);
    for (const d of moved) expect(Math.abs(Math.abs(d) - 0.1)).toBeLessThan(1e-3);
    expect((trainer.optimizerState.get('fc2.bias.max_exp_avg_sq') as Float32Array).every((v) => v > 0)).toBe(true);

    const features = await trainer.forward('encoder', { x: batch.x });
    expect(features.features.dims).toEqual([8, 6]);

    // The exported encoder carries the trained weights (here in external data) and needs only the batch.
    const file = path.join(trainer.dir, 'export', 'encoder.onnx');
    fs.mkdirSync(path.dirname(file));
    const entry = exportForwardModel(trainer, 'encoder', file, { threshold: 0 });
    expect(entry).toMatchObject({ file: 'encoder.onnx', dataFile: 'encoder.onnx.data' });
    expect(entry.inputs.map((i) => i.name)).toEqual(['x']);
    const plain = await ort.InferenceSession.create(file);
    const again = await plain.run({ x: new ort.Tensor('float32', batch.x as Float32Array, [8, 3]) });
    expect(Array.from(again.features.data as Float32Array)).toEqual(Array.from(features.features.data as Float32Array));
    await plain.release();
    await trainer.release();
  });

  test('gradient clipping scales to the maximum norm and non-finite gradients skip the step', async () => {
    const trainer = await Trainer.load(artifacts('float32', { kind: 'sgd' }), { threads: 1 });
    const batch = regressionBatch('float32');
    const norms: number[] = [];
    let clipped = 0;
    await trainer.step(batch, {
      lr: 0,
      gradientHook: (grads) => {
        const result = gradientPolicy({ maxNorm: 0.01, onNorm: (n) => norms.push(n) })(grads);
        clipped = globalGradNorm(grads);
        return result;
      },
    });
    expect(norms[0]).toBeGreaterThan(0.01);
    expect(clipped).toBeCloseTo(0.01, 5);
    const grads = new Map([['a', Float32Array.of(3, 4)]]);
    expect(clipGradNorm(grads, 10)).toBeCloseTo(5);
    expect(Array.from(grads.get('a')!)).toEqual([3, 4]);
    const bad = { x: (batch.x as Float32Array).map((v, i) => (i === 0 ? NaN : v)), target: batch.target };
    expect(await trainer.step(bad, { lr: 0.1, gradientHook: gradientPolicy({}) })).toMatchObject({ skipped: true, step: 1 });
    await trainer.release();
  });

  test('bad batches and bad values are clear errors', async () => {
    const trainer = await Trainer.load(artifacts('float32', { kind: 'sgd' }), { threads: 1 });
    const { x } = regressionBatch('float32');
    await expect(trainer.evaluate({ x })).rejects.toThrow(new BatchError('batch lacks input target (float32[8, 2])'));
    await expect(trainer.evaluate({ x, target: new Float32Array(3) })).rejects.toThrow(/batch input target: 3 values for shape \[8, 2\]/);
    await expect(trainer.evaluate({ x, target: new Float64Array(16) })).rejects.toThrow(/expected float32 data/);
    expect(() => trainer.parameters.set('nope', new Float32Array(1))).toThrow(TensorValueError);
    expect(() => (trainer.stepCount = -1)).toThrow(/step count -1/);
    await expect(trainer.forward('decoder', { x })).rejects.toThrow(/no forward model "decoder".*has: encoder/);
    await trainer.release();
  });
});
