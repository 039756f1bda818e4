import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { Rng } from '../../common/rng';
import { buildVocoGraph } from '../../graph/models/voco/model';
import { resolveVocoOptions } from '../../graph/models/voco/options';
import { stateDictEntries } from '../../graph/models/swinunetr-encoder';
import { ENCODER_MODEL, INITIAL_WEIGHTS_FILE, writeVocoArtifacts } from '../../graph/models/voco/artifacts';
import { importVocoWeights } from '../../graph/models/voco/weights';
import { readManifest } from '../../graph/onnx/manifest';
import { readSafetensorsHeader } from '../../io/weights/safetensors';

const ROOT = path.resolve(__dirname, '../..');

describe('VoCo artifacts', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-artifacts-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('tiny: training, eval, optimizer and encoder models, manifest and initial weights; the encoder runs', async () => {
    const options = resolveVocoOptions({ preset: 'tiny', batchSize: 1, swBatchSize: 2 });
    const dir = path.join(tmp, 'tiny');
    const manifest = writeVocoArtifacts(dir, options, { optimizer: { kind: 'adamw' }, encoderBatch: 1, seed: 3 });
    expect(readManifest(dir)).toEqual(manifest);
    for (const m of [manifest.models.training, manifest.models.eval, manifest.models.optimizer, manifest.models.forward[ENCODER_MODEL]]) {
      expect(fs.existsSync(path.join(dir, m.file))).toBe(true);
    }
    const training = manifest.models.training;
    const inputs = Object.fromEntries(training.inputs.filter((i) => i.role === 'input').map((i) => [i.name, i.shape]));
    expect(inputs).toEqual({ images: [2, 1, 64, 64, 64], crops: [9, 1, 64, 64, 64], labels: [1, 2, 9], feature_dropout_mask: [11, 1] });
    const outputs = training.outputs.map((o) => o.name);
    expect(outputs).toEqual(expect.arrayContaining(['loss', 'loss.intra', 'loss.inter', 'loss.reg', 'embeddings', 'ema.teacher.layer3.0.bias']));
    expect(outputs.filter((n) => n.endsWith('_grad'))).toHaveLength(manifest.parameters.filter((p) => p.trainable).length);
    expect(manifest.parameters.filter((p) => !p.trainable).map((p) => p.name)).toEqual([
      'teacher.layer1.0.weight',
      'teacher.layer1.0.bias',
      'teacher.layer2.0.weight',
      'teacher.layer2.0.bias',
      'teacher.layer3.0.weight',
      'teacher.layer3.0.bias',
    ]);

    // The initial weights are an upstream state dict this project imports again (buffers checked).
    const weightsFile = path.join(dir, INITIAL_WEIGHTS_FILE);
    const vg = buildVocoGraph(options, 'train');
    expect(readSafetensorsHeader(weightsFile).entries.map((e) => e.name)).toEqual(stateDictEntries(vg).map((e) => e.name));
    const weights = importVocoWeights(weightsFile, vg);

    // ONNX Runtime accepts the training model (its shape inference agrees with every shape we recorded).
    const trainingSession = await ort.InferenceSession.create(path.join(dir, training.file), { intraOpNumThreads: 1 });
    expect(trainingSession.outputNames).toEqual(training.outputs.map((o) => o.name));
    await trainingSession.release();

    // ONNX Runtime loads the encoder and runs it on a crop with those weights.
    const session = await ort.InferenceSession.create(path.join(dir, `${ENCODER_MODEL}.onnx`), { intraOpNumThreads: 2 });
    const rng = new Rng(1);
    const feeds: Record<string, ort.Tensor> = {
      crops: new ort.Tensor('float32', Float32Array.from({ length: 64 ** 3 }, () => rng.uniform()), [1, 1, 64, 64, 64]),
    };
    for (const name of session.inputNames.filter((n) => n !== 'crops')) {
      const p = manifest.parameters.find((q) => q.name === name)!;
      feeds[name] = new ort.Tensor('float32', weights.get(name)!, [...p.shape]);
    }
    const out = await session.run(feeds);
    expect(out.embedding.dims).toEqual([1, 288]);
    expect(out.hidden4.dims).toEqual([1, 192, 2, 2, 2]);
    expect((out.embedding.data as Float32Array).every(Number.isFinite)).toBe(true);
    await session.release();
  }, 120_000);

  test('the CLI refuses bad options with one line and exit status 2, writing nothing', () => {
    const out = path.join(tmp, 'refused');
    const run = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), path.join(ROOT, 'cli/main.ts'), 'build-graph', '--preset', 'B', '--roi', '48', '--out', out], {
      encoding: 'utf8',
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toBe('voco: roi must be a multiple of 32, got 48\n');
    expect(fs.existsSync(out)).toBe(false);
  }, 60_000);
});
