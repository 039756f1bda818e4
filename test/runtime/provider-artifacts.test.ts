import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { onnx } from 'onnx-proto';
import { resolveVocoOptions } from '../../graph/models/voco/options';
import { writeVocoArtifacts } from '../../graph/models/voco/artifacts';
import { ModelEntry } from '../../graph/onnx/manifest';
import { EXECUTION_PROVIDERS, ProviderUnavailableError, createSession } from '../../runtime/session/providers';

/**
 * Every model file of a VoCo artifact folder (tiny, roi 32, the step also in pieces) with each execution provider:
 * the CPU must load all of them with every graph optimisation; CUDA and WebGPU load them where this machine has
 * them and otherwise fail with their one-line ProviderUnavailableError (docs/performance.md lists the opsets each
 * provider takes).
 */
describe('artifacts with each execution provider', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-ep-artifacts-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const options = resolveVocoOptions({ preset: 'tiny', roi: 32, batchSize: 1, swBatchSize: 1 });
  const manifest = writeVocoArtifacts(dir, options, { optimizer: { kind: 'adamw' }, encoderBatch: 1, cropsPerRun: 2 });
  const entries: ModelEntry[] = [
    manifest.models.training,
    manifest.models.eval,
    manifest.models.optimizer,
    ...Object.values(manifest.models.forward),
    ...Object.values(manifest.pieces!.models),
  ];
  const opsetOf = (m: ModelEntry) => {
    const model = onnx.ModelProto.decode(fs.readFileSync(path.join(dir, m.file)));
    return { ir: Number(model.irVersion), opset: model.opsetImport.map((o) => `${o.domain ?? ''}:${o.version}`), attention: model.graph!.node!.some((n) => n.opType === 'Attention') };
  };

  test('models with the Swin attention are opset 23 (IR 11), the others stay at opset 17', () => {
    const opsets = Object.fromEntries(entries.map((m) => [m.file, opsetOf(m)]));
    expect(opsets['training_model.onnx']).toEqual({ ir: 11, opset: [':23'], attention: true });
    expect(opsets['backbone_forward.onnx']).toEqual({ ir: 11, opset: [':23'], attention: true });
    // The backward piece reads the attention outputs its forward piece saved: no Attention node, opset 17.
    expect(opsets['backbone_backward.onnx']).toEqual({ ir: 8, opset: [':17'], attention: false });
    expect(opsets['optimizer_model.onnx']).toEqual({ ir: 8, opset: [':17'], attention: false });
    expect(opsets['heads_training.onnx']).toEqual({ ir: 8, opset: [':17'], attention: false });
    expect(manifest.opset).toBe(23);
  });

  test.each(EXECUTION_PROVIDERS)('%s loads every model or says it is unavailable', async (provider) => {
    for (const m of entries) {
      try {
        const session = await createSession(path.join(dir, m.file), { provider, threads: 1 });
        expect([...session.inputNames]).toEqual(m.inputs.map((i) => i.name));
        await session.release();
      } catch (error) {
        if (provider === 'cpu') throw error;
        expect(error).toBeInstanceOf(ProviderUnavailableError);
        expect((error as Error).message).toMatch(new RegExp(`^execution provider ${provider}: .*(npm ci|Vulkan)`));
        return;
      }
    }
  });
});
