/**
 * Optional analysis helper, not used by any test: writes our SwinUNETR DiceCE step on a segmentation step fixture
 * (tiny preset, 4 classes, roi 64, 2 crops, as ../shared/reference/segmentation/tiny12_r64_b2_c4) to a safetensors
 * file: `loss` and `grad.<MONAI key>` per parameter, for scripts/swinunetr_float64_check.py --ours.
 *   npx tsx scripts/swinunetr-grad-dump.ts <fixture dir> <out.safetensors>
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeSwinUnetrArtifacts } from '../graph/models/swinunetr/artifacts';
import { resolveSwinUnetrOptions } from '../graph/models/swinunetr/options';
import { loadArtifacts } from '../runtime/trainer';
import { readSafetensors, writeSafetensors } from '../runtime/weights/safetensors';
import { NamedTensor, TensorMap } from '../runtime/weights/tensor-map';

const float32 = (tensors: TensorMap, name: string, file: string): Float32Array => {
  const t = tensors.get(name);
  if (!t || t.dtype !== 'float32') throw new Error(`${file} has no float32 tensor ${name}`);
  return t.data as Float32Array;
};

async function main(): Promise<void> {
  const [fixture, out] = process.argv.slice(2);
  if (!fixture || !out) throw new Error('usage: swinunetr-grad-dump.ts <fixture dir> <out.safetensors>');
  const weightsFile = path.join(fixture, 'weights.safetensors');
  const inputsFile = path.join(fixture, 'inputs.safetensors');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinunetr-grad-dump-'));
  try {
    writeSwinUnetrArtifacts(tmp, resolveSwinUnetrOptions({ preset: 'tiny', outChannels: 4, roi: 64, batchSize: 2 }));
    const trainer = await loadArtifacts(tmp);
    const weights = readSafetensors(weightsFile);
    for (const name of trainer.parameters.names()) trainer.parameters.set(name, float32(weights, name, weightsFile));
    const inputs = readSafetensors(inputsFile);
    const step = await trainer.computeGradients({ image: float32(inputs, 'image', inputsFile), label: float32(inputs, 'label', inputsFile) });
    const tensors: NamedTensor[] = [{ name: 'loss', dtype: 'float64', shape: [1], data: Float64Array.of(step.loss) }];
    for (const [name, g] of step.gradients) {
      const shape = weights.get(name)!.shape;
      tensors.push({ name: `grad.${name}`, dtype: g instanceof Float64Array ? 'float64' : 'float32', shape, data: g });
    }
    writeSafetensors(out, tensors);
    await trainer.release();
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
