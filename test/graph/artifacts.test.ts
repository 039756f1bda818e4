import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { Rng } from '../../common/rng';
import { ConstantData, Graph } from '../../graph/core/graph';
import { add, neg } from '../../graph/ops/elementwise';
import { ModelSpecError, buildModel } from '../../graph/onnx/model';
import { split } from '../../graph/ops/slice';
import { initialValues } from '../../graph/nn/init';
import { ArtifactSpecError, writeArtifacts, writeForwardModel } from '../../graph/onnx/artifacts';
import { EXTERNAL_DATA_ALIGNMENT } from '../../graph/onnx/external-data';
import { ArtifactManifest, ManifestError, readManifest } from '../../graph/onnx/manifest';
import { OptimizerConfig } from '../../graph/optim/config';
import { createSession } from '../../runtime/session/providers';
import { readSafetensors } from '../../io/weights/safetensors';
import { buildMlp, regressionBatch } from '../runtime/mlp';
import { cpuSession, runSession } from '../helpers/ort';

const made: string[] = [];
const tempDir = (): string => {
  made.push(fs.mkdtempSync(path.join(os.tmpdir(), 'voco-artifacts-')));
  return made[made.length - 1];
};
afterAll(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function decode(file: string): { opsetImport: onnx.IOperatorSetIdProto[]; graph: onnx.GraphProto } {
  const model = onnx.ModelProto.decode(fs.readFileSync(file));
  return { opsetImport: model.opsetImport, graph: model.graph as onnx.GraphProto };
}

const externalEntries = (t: onnx.ITensorProto): onnx.IStringStringEntryProto[] => t.externalData ?? [];

describe('training artifacts', () => {
  let dir: string;
  let manifest: ArtifactManifest;
  beforeAll(() => {
    dir = tempDir();
    const mlp = buildMlp('float32');
    manifest = writeArtifacts(dir, {
      graph: mlp.graph,
      loss: mlp.loss,
      extras: { prediction: mlp.prediction },
      optimizer: { kind: 'adamw', amsgrad: true },
      forward: { encoder: { outputs: { features: mlp.hidden } } },
    });
  });

  test('the folder holds the four models, the manifest and the build-time values, and no temporary files', () => {
    expect(fs.readdirSync(dir).sort()).toEqual(
      ['encoder.onnx', 'eval_model.onnx', 'initial_values.safetensors', 'manifest.json', 'optimizer_model.onnx', 'training_model.onnx'].sort(),
    );
    expect(readManifest(dir)).toEqual(JSON.parse(JSON.stringify(manifest)));
    const offset = readSafetensors(path.join(dir, 'initial_values.safetensors')).get('offset')!;
    expect(Array.from(offset.data as Float32Array)).toEqual([0.1, 0.2].map(Math.fround));
  });

  test('the manifest describes every parameter and every input and output with its role', () => {
    expect(manifest.parameters.map((p) => [p.name, p.shape, p.trainable, p.init.kind])).toEqual([
      ['fc1.weight', [6, 3], true, 'uniform'],
      ['fc1.bias', [6], true, 'uniform'],
      ['fc2.weight', [2, 6], true, 'uniform'],
      ['fc2.bias', [2], true, 'uniform'],
      ['scale', [], false, 'constant'],
      ['offset', [2], false, 'values'],
    ]);
    const roles = (entries: readonly { name: string; role: string }[]) => entries.map((e) => `${e.role}:${e.name}`);
    const training = manifest.models.training;
    expect(roles(training.inputs)).toEqual([
      'parameter:fc1.weight', 'parameter:fc1.bias', 'parameter:fc2.weight', 'parameter:fc2.bias',
      'state:scale', 'state:offset', 'input:x', 'input:target',
    ]);
    expect(roles(training.outputs)).toEqual([
      'output:loss', 'output:prediction',
      'gradient:fc1.weight_grad', 'gradient:fc1.bias_grad', 'gradient:fc2.weight_grad', 'gradient:fc2.bias_grad',
    ]);
    expect(training.outputs[0]).toEqual({ name: 'loss', dtype: 'float32', shape: [], role: 'output' });
    expect(roles(manifest.models.eval.outputs)).toEqual(['output:loss', 'output:prediction']);
    // The encoder needs only fc1 and x.
    expect(roles(manifest.models.forward.encoder.inputs)).toEqual(['parameter:fc1.weight', 'parameter:fc1.bias', 'input:x']);
    const opt = manifest.models.optimizer;
    expect(opt.inputs).toHaveLength(2 + 4 * 5);
    expect(opt.outputs.find((o) => o.name === 'fc2.bias.max_exp_avg_sq.new')).toEqual({
      name: 'fc2.bias.max_exp_avg_sq.new', dtype: 'float32', shape: [2], role: 'optimizer-state', updates: 'fc2.bias.max_exp_avg_sq',
    });
    expect(manifest.optimizer).toMatchObject({ kind: 'adamw', amsgrad: true, weightDecay: 0.01, slots: ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'] });
  });

  test('every model uses only default-domain operators at opset 17 and its declared inputs and outputs', () => {
    for (const entry of [manifest.models.training, manifest.models.eval, manifest.models.optimizer, manifest.models.forward.encoder]) {
      const model = decode(path.join(dir, entry.file));
      expect(model.opsetImport.map((o) => [o.domain ?? '', Number(o.version)])).toEqual([['', 17]]);
      expect(model.graph.node.every((n) => !n.domain)).toBe(true);
      expect(model.graph.input.map((i) => i.name)).toEqual(entry.inputs.map((i) => i.name));
      expect(model.graph.output.map((o) => o.name)).toEqual(entry.outputs.map((o) => o.name));
    }
  });

  test('ONNX Runtime loads every model with all graph optimisations (shape inference cross-checks value_info)', async () => {
    for (const entry of [manifest.models.training, manifest.models.eval, manifest.models.optimizer, manifest.models.forward.encoder]) {
      const session = await createSession(path.join(dir, entry.file));
      expect([...session.inputNames]).toEqual(entry.inputs.map((i) => i.name));
      await session.release();
    }
  });

  test('parameters left out of `trainable` are fed as state and get neither gradients nor optimizer slots', () => {
    const mlp = buildMlp('float32');
    const byName = (n: string) => mlp.graph.parameters.find((p) => p.tensor.name === n)!.tensor;
    const frozen = writeArtifacts(tempDir(), { graph: mlp.graph, loss: mlp.loss, trainable: [byName('fc2.weight'), byName('fc2.bias')], optimizer: { kind: 'adamw' } });
    expect(frozen.models.training.inputs.filter((i) => i.role === 'state').map((i) => i.name)).toEqual(['fc1.weight', 'fc1.bias', 'scale', 'offset']);
    expect(frozen.models.training.outputs.filter((o) => o.role === 'gradient').map((o) => o.name)).toEqual(['fc2.weight_grad', 'fc2.bias_grad']);
    expect(frozen.models.optimizer.outputs.map((o) => o.name)).toEqual([
      'fc2.weight.new', 'fc2.weight.exp_avg.new', 'fc2.weight.exp_avg_sq.new', 'fc2.bias.new', 'fc2.bias.exp_avg.new', 'fc2.bias.exp_avg_sq.new',
    ]);
    expect(frozen.parameters.filter((p) => p.trainable).map((p) => p.name)).toEqual(['fc2.weight', 'fc2.bias']);
    expect(() => writeArtifacts(tempDir(), { graph: mlp.graph, loss: mlp.loss, trainable: [mlp.hidden], optimizer: { kind: 'sgd' } })).toThrow(
      /is not a parameter of the graph/,
    );
  });

  test('a non-scalar loss and a clashing output name are refused', () => {
    const mlp = buildMlp('float32');
    expect(() => writeArtifacts(tempDir(), { graph: mlp.graph, loss: mlp.prediction, optimizer: { kind: 'sgd' } })).toThrow(ArtifactSpecError);
    expect(() => writeArtifacts(tempDir(), { graph: mlp.graph, loss: mlp.loss, extras: { loss: mlp.prediction }, optimizer: { kind: 'sgd' } })).toThrow(
      /reserved/,
    );
    expect(() =>
      writeArtifacts(tempDir(), { graph: mlp.graph, loss: mlp.loss, optimizer: { kind: 'sgd' }, forward: { eval_model: { outputs: { y: mlp.hidden } } } }),
    ).toThrow(/forward model name "eval_model" is taken/);
    expect(() => readManifest(tempDir())).toThrow(ManifestError);
  });
});

describe('model outputs', () => {
  test('a tensor output twice, the second time under its own name, is emitted once and copied to the other output', async () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [3]);
    const y = neg(x);
    const session = await cpuSession({ name: 'twice', inputs: [x], outputs: [{ name: 'first', tensor: y }, { name: y.name, tensor: y }] });
    const out = await runSession(session, new Map([[x, Float32Array.of(1, -2, 3)]]));
    expect(Array.from(out.first)).toEqual([-1, 2, -3]);
    expect(Array.from(out[y.name])).toEqual([-1, 2, -3]);
  });

  test('a computed tensor fed as an input is read, not computed: the nodes only it needed are left out', async () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [3]);
    const y = neg(x);
    const z = add(y, x);
    const model = buildModel({ name: 'cut', inputs: [x, y], outputs: [{ name: 'z', tensor: z }] });
    expect(model.graph!.node!.map((n) => n.opType)).toEqual(['Add']);
    const session = await cpuSession({ name: 'cut', inputs: [x, y], outputs: [{ name: 'z', tensor: z }] });
    const out = await runSession(session, new Map([[x, Float32Array.of(1, 2, 3)], [y, Float32Array.of(10, 20, 30)]]));
    expect(Array.from(out.z)).toEqual([11, 22, 33]);
    // A fed tensor that a needed node would also produce (the other output of a Split) is refused.
    const [a, b] = split(x, [1, 2]);
    expect(() => buildModel({ name: 'both', inputs: [x, a], outputs: [{ name: 'b', tensor: b }] })).toThrow(
      new ModelSpecError(`model both: input ${a.name} is also computed by a node the outputs need`),
    );
  });
});

describe('forward models and external data', () => {
  const shape = { batch: 4, inFeatures: 16, hidden: 32, outFeatures: 2 };

  test('a self-contained encoder over the threshold keeps its weights in aligned external data that ORT loads from the path', async () => {
    const dir = tempDir();
    const mlp = buildMlp('float32', shape);
    const values = initialValues(mlp.graph, new Rng(5));
    const weights = new Map<string, ConstantData>([...values].map(([t, v]) => [t.name, v]));
    const outputs = { features: mlp.hidden };
    const baked = writeForwardModel(path.join(dir, 'encoder.onnx'), { outputs, weights, externalData: { threshold: 0 } });
    const open = writeForwardModel(path.join(dir, 'encoder_open.onnx'), { outputs });

    expect(baked.dataFile).toBe('encoder.onnx.data');
    expect(baked.inputs.map((i) => i.name)).toEqual(['x']);
    expect(open.inputs.map((i) => i.name)).toEqual(['fc1.weight', 'fc1.bias', 'x']);
    const model = decode(path.join(dir, 'encoder.onnx'));
    const external = model.graph.initializer.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
    expect(external.map((t) => t.name)).toEqual(['fc1.weight']); // the 128-byte bias stays inline (under 1 KiB)
    const info = Object.fromEntries(externalEntries(external[0]).map((e) => [e.key, e.value]));
    expect(info).toEqual({ location: 'encoder.onnx.data', offset: '0', length: String(32 * 16 * 4) });
    expect(Number(info.offset) % EXTERNAL_DATA_ALIGNMENT).toBe(0);

    const { x } = regressionBatch('float32', shape);
    const feedX = new ort.Tensor('float32', x as Float32Array, [4, 16]);
    const bakedSession = await createSession(path.join(dir, 'encoder.onnx'));
    const openSession = await createSession(path.join(dir, 'encoder_open.onnx'));
    const byName = (name: string) => [...values].find(([t]) => t.name === name)![1] as Float32Array;
    const a = await bakedSession.run({ x: feedX });
    const b = await openSession.run({
      x: feedX,
      'fc1.weight': new ort.Tensor('float32', byName('fc1.weight'), [32, 16]),
      'fc1.bias': new ort.Tensor('float32', byName('fc1.bias'), [32]),
    });
    expect(Array.from(a.features.data as Float32Array)).toEqual(Array.from(b.features.data as Float32Array));
    expect((a.features.data as Float32Array).some((v) => v !== 0)).toBe(true);
    await Promise.all([bakedSession.release(), openSession.release()]);
  });

  test('several external tensors sit at 4 KiB-aligned, non-overlapping offsets in one data file', () => {
    const dir = tempDir();
    const mlp = buildMlp('float32', { batch: 2, inFeatures: 300, hidden: 260, outFeatures: 1 });
    const weights = new Map<string, ConstantData>([...initialValues(mlp.graph, new Rng(1))].map(([t, v]) => [t.name, v]));
    writeForwardModel(path.join(dir, 'm.onnx'), { outputs: { y: mlp.prediction }, weights, externalData: { threshold: 1000 } });
    const external = decode(path.join(dir, 'm.onnx')).graph.initializer.filter((t) => externalEntries(t).length > 0);
    const placed = external
      .map((t) => ({ name: t.name, at: Object.fromEntries(externalEntries(t).map((e) => [e.key, Number(e.value)])) }))
      .sort((p, q) => p.at.offset - q.at.offset);
    expect(placed.map((p) => p.name).sort()).toEqual(['fc1.bias', 'fc1.weight', 'fc2.weight']);
    placed.forEach((p, i) => {
      expect(p.at.offset % EXTERNAL_DATA_ALIGNMENT).toBe(0);
      if (i > 0) expect(p.at.offset).toBeGreaterThanOrEqual(placed[i - 1].at.offset + placed[i - 1].at.length);
    });
    const last = placed[placed.length - 1].at;
    expect(fs.statSync(path.join(dir, 'm.onnx.data')).size).toBe(last.offset + last.length);
  });
});

/** Debian's python3-onnx lives under /usr/bin/python3, which a python3 earlier on PATH (pyenv, venv) may hide. */
const pythonWithOnnx = ['python3', '/usr/bin/python3'].find((p) => spawnSync(p, ['-c', 'import onnx'], { encoding: 'utf8' }).status === 0);

(pythonWithOnnx ? describe : describe.skip)('the ONNX checker (python3-onnx, optional)', () => {
  test.each<[string, OptimizerConfig]>([
    ['AdamW amsgrad', { kind: 'adamw', amsgrad: true }],
    ['SGD Nesterov', { kind: 'sgd', momentum: 0.9, nesterov: true }],
  ])('every artifact passes check_model with full shape inference (%s)', (_label, optimizer) => {
    const dir = tempDir();
    const mlp = buildMlp('float32');
    const manifest = writeArtifacts(dir, {
      graph: mlp.graph,
      loss: mlp.loss,
      extras: { prediction: mlp.prediction },
      optimizer,
      forward: { encoder: { outputs: { features: mlp.hidden } } },
      externalData: { threshold: 0 },
    });
    const files = [manifest.models.training, manifest.models.eval, manifest.models.optimizer, manifest.models.forward.encoder].map((m) => path.join(dir, m.file));
    const script = 'import sys, onnx\nfor f in sys.argv[1:]:\n    onnx.checker.check_model(f, full_check=True)\nprint("ok")';
    const result = spawnSync(pythonWithOnnx!, ['-c', script, ...files], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe('ok');
  });
});
