import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { summarise } from '../../bench/ort-profile';
import { Graph } from '../../graph/core/graph';
import { neg } from '../../graph/ops/elementwise';
import { buildModel, encodeModel } from '../../graph/onnx/model';
import { ProviderUnavailableError, createSession, sessionOptions } from '../../runtime/session/providers';

function tinyModelFile(): string {
  const g = new Graph();
  const x = g.input('x', 'float32', [2]);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'voco-ep-')), 'neg.onnx');
  fs.writeFileSync(file, encodeModel(buildModel({ name: 'neg', inputs: [x], outputs: [{ name: 'y', tensor: neg(x) }] })));
  return file;
}

const cudaInstalled = fs
  .readdirSync(path.join(path.dirname(require.resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch))
  .includes('libonnxruntime_providers_cuda.so');

describe('execution providers', () => {
  const file = tinyModelFile();
  afterAll(() => fs.rmSync(path.dirname(file), { recursive: true, force: true }));

  test('session options carry the provider, device id and thread count', () => {
    expect(sessionOptions({ provider: 'cuda', deviceId: 1, threads: 3 })).toEqual({
      executionProviders: [{ name: 'cuda', deviceId: 1 }],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: 3,
      interOpNumThreads: 1,
    });
    expect(sessionOptions().executionProviders).toEqual([{ name: 'cpu' }]);
  });

  test('cpu runs', async () => {
    const session = await createSession(file, { provider: 'cpu', threads: 1 });
    expect(session.inputNames).toEqual(['x']);
    await session.release();
  });

  (cudaInstalled ? test.skip : test)('cuda without its provider libraries is a clear error naming the fix', async () => {
    const attempt = createSession(file, { provider: 'cuda', deviceId: 0 });
    await expect(attempt).rejects.toThrow(ProviderUnavailableError);
    await expect(attempt).rejects.toThrow(/ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci/);
  });

  test('webgpu either runs or fails with a clear error about the Vulkan GPU it needs', async () => {
    try {
      const session = await createSession(file, { provider: 'webgpu' });
      await session.release();
    } catch (error) {
      expect(error).toBeInstanceOf(ProviderUnavailableError);
      expect((error as Error).message).toMatch(/^execution provider webgpu: failed to initialise .*Vulkan-capable GPU/);
    }
  });

  test('an unknown provider or a bad device id is refused before ONNX Runtime sees it', async () => {
    await expect(createSession(file, { provider: 'tpu' as 'cpu' })).rejects.toThrow(/unknown; choose one of cpu, cuda, webgpu/);
    await expect(createSession(file, { provider: 'cuda', deviceId: -1 })).rejects.toThrow(/device id -1/);
  });
});

describe('per-node profiles', () => {
  const file = tinyModelFile();
  const prefix = path.join(path.dirname(file), 'profile');
  afterAll(() => fs.rmSync(path.dirname(file), { recursive: true, force: true }));

  test('VOCO_ORT_PROFILE makes each session write its profile when released, and bench/ort-profile.ts sums it by operator', async () => {
    process.env.VOCO_ORT_PROFILE = prefix;
    try {
      const session = await createSession(file, { threads: 1 });
      for (let i = 0; i < 3; i++) await session.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2), [2]) });
      await session.release();
    } finally {
      delete process.env.VOCO_ORT_PROFILE;
    }
    const written = fs.readdirSync(path.dirname(file)).filter((f) => f.startsWith('profile') && f.endsWith('.json'));
    expect(written).toHaveLength(1);
    const summary = summarise(path.join(path.dirname(file), written[0]), 5);
    expect(summary[0]).toMatch(/: 3 runs, /);
    expect(summary).toContainEqual(expect.stringMatching(/^\| Neg \| [\d.]+ \| 100\.0 \| 3 \|$/));
  });
});
