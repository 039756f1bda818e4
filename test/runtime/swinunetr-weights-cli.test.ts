import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadCheckpoint } from '../../io/checkpoint';
import { readSafetensors } from '../../io/weights/safetensors';
import { TensorMap } from '../../io/weights/tensor-map';
import { runVoco } from '../helpers/cli';
import { REFERENCE, referenceDescribe } from '../helpers/reference';
import { maxRelative } from '../helpers/relative-error';
import { gradientsOverBound } from '../helpers/swinunetr-tolerances';

/**
 * `voco import-weights` and `voco grad` with SwinUNETR weights (the model inferred from the file), through the real
 * CLI, against MONAI 1.3.2 in ../shared/reference/segmentation/tiny12_r64_b2_c4.
 */
const FIXTURE = path.join(REFERENCE, 'segmentation/tiny12_r64_b2_c4');
const WEIGHTS = path.join(FIXTURE, 'weights.safetensors');

let tmp: string;
beforeAll(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinunetr-cli-'))));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const data = (tensors: TensorMap, name: string): Float32Array => {
  const t = tensors.get(name);
  if (!t) throw new Error(`lacks ${name}`);
  return t.data as Float32Array;
};

referenceDescribe('SwinUNETR weights through the CLI', () => {
  test('import-weights of a MONAI state dict writes a fine-tuning checkpoint naming the model; other classes start out fresh, said', () => {
    const out = path.join(tmp, 'imported.ckpt');
    const run = runVoco(['import-weights', WEIGHTS, '--out', out]);
    expect([run.status, run.stderr]).toEqual([0, '']);
    expect(run.stdout).toBe(
      [
        `read ${WEIGHTS}: 167 tensors; SwinUNETR feature size 12 (preset tiny), 1 input channel(s), 4 classes`,
        `${WEIGHTS}: loaded 159 of 159 parameters; 8 relative_position_index buffers checked`,
        `wrote ${out}`,
        '',
      ].join('\n'),
    );
    const ckpt = loadCheckpoint<{ model: string; options: object }>(out);
    expect([ckpt.meta.model, ckpt.meta.options]).toEqual(['swinunetr', { featureSize: 12, inChannels: 1, outChannels: 4 }]);
    const weights = readSafetensors(WEIGHTS);
    const parameters = ckpt.groups.get('parameters')!;
    expect(parameters.size).toBe(159);
    for (const [name, t] of parameters) expect(Buffer.from((t.data as Float32Array).buffer).equals(Buffer.from(data(weights, name).buffer))).toBe(true);

    const three = path.join(tmp, 'three.pt');
    const narrowed = runVoco(['import-weights', WEIGHTS, '--out', three, '--out-channels', '3', '--seed', '4']);
    expect(narrowed.status).toBe(0);
    expect(narrowed.stderr).toMatch(/^warning: Error\(s\) in loading state_dict: size mismatch for out\.conv\.conv\.weight: copying a param with shape \[4, 12, 1, 1, 1\]/);
    expect(narrowed.stdout).toContain('out.conv.conv.bias [4] in the file vs [3] in the model (classes 4 in the file, 3 in the model) -> fresh');
    const strict = runVoco(['import-weights', WEIGHTS, '--out', path.join(tmp, 'strict.pt'), '--out-channels', '3', '--strict']);
    expect(strict.status).toBe(2);
    expect(fs.existsSync(path.join(tmp, 'strict.pt'))).toBe(false);
    const wrong = runVoco(['import-weights', WEIGHTS, '--out', path.join(tmp, 'wrong.ckpt'), '--preset', 'B']);
    expect([wrong.status, wrong.stderr]).toEqual([2, 'voco: --preset and --feature-size apply to VoCo; a SwinUNETR import takes the feature size of the file\n']);
  }, 300_000);

  test('grad on MONAI weights and an image/label batch: logits, loss parts within 1e-4, every gradient within the reference bounds', () => {
    const out = path.join(tmp, 'grad.safetensors');
    const run = runVoco(['grad', '--weights', WEIGHTS, '--batch', path.join(FIXTURE, 'inputs.safetensors'), '--out', out]);
    expect([run.status, run.stderr]).toEqual([0, '']);
    const got = readSafetensors(out);
    const expected = readSafetensors(path.join(FIXTURE, 'expected.safetensors'));
    const relative = (name: string) => Math.abs(data(got, name)[0] - data(expected, name)[0]) / Math.abs(data(expected, name)[0]);
    expect(['loss', 'loss.dice', 'loss.ce'].map(relative).every((e) => e < 1e-4)).toBe(true);
    expect(got.get('logits')!.shape).toEqual([2, 4, 64, 64, 64]);
    expect(maxRelative(data(got, 'logits').subarray(0, 4096), data(expected, 'logits.head'))).toBeLessThan(1e-4);
    const gradStats = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'case.json'), 'utf8')).grad_stats as Record<string, { l2: number }>;
    const names = Object.keys(gradStats);
    expect([...got.keys()].filter((k) => k.startsWith('grad.')).sort()).toEqual(names.map((n) => `grad.${n}`).sort());
    expect(gradientsOverBound(names, (n) => data(got, `grad.${n}`), expected, gradStats)).toEqual({ norm: [], head: [] });
  }, 600_000);
});
