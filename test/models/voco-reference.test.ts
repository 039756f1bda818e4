import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeVocoGradients } from '../../runtime/voco/grad';
import { readSafetensors } from '../../io/weights/safetensors';
import { NamedTensor, TensorMap } from '../../io/weights/tensor-map';
import { REFERENCE } from '../helpers/reference';
import { maxRelative, norm, overBound, relativeL2 } from '../helpers/relative-error';

/**
 * One full training step of the tiny model (roi 64, 1 + 9 crops) through `voco grad`, against the upstream
 * PyTorch step in /work/shared/reference/model/tiny12_r64_b1.
 */
const FIXTURE = path.join(REFERENCE, 'model/tiny12_r64_b1');
const present = fs.existsSync(path.join(FIXTURE, 'expected.safetensors'));
const describeFixture = present ? describe : describe.skip;

const values = (t: NamedTensor | undefined): Float32Array => {
  if (!t) throw new Error('missing tensor');
  return t.data as Float32Array;
};

/**
 * Gradients that float32 cannot pin down to 1e-3, with the bound each meets and why (measured against a float64
 * recomputation of the encoders and heads from the reference's own inputs):
 * - encoder1/encoder2: the pooled head gradient is almost constant per channel and cancels through InstanceNorm;
 *   PyTorch's own float32 result is 3e-3 (encoder1.conv1), 8e-2 (encoder1.conv2), 4e-3 (encoder2.conv2) away
 *   from float64, and ours lands as far on the other side.
 * - encoder4: at 8^3 voxels per channel a pre-activation crossing zero flips its LeakyReLU slope (1 vs 0.01) and
 *   moves the gradient by ~1/512; the 1e-6 difference in swin.hidden2 is enough for 7e-3. Fed the reference's
 *   hidden2 and cotangent, our block matches float64 to 6e-6.
 */
const ILL_CONDITIONED: Readonly<Record<string, number>> = {
  'grad.backbone.encoder1.layer.conv1.conv.weight': 2e-2,
  'grad.backbone.encoder1.layer.conv2.conv.weight': 0.3,
  'grad.backbone.encoder2.layer.conv1.conv.weight': 5e-3,
  'grad.backbone.encoder2.layer.conv2.conv.weight': 2e-2,
  'grad.backbone.encoder4.layer.conv1.conv.weight': 3e-2,
  'grad.backbone.encoder4.layer.conv2.conv.weight': 3e-2,
};

/**
 * Gradients that are zero in exact arithmetic, so both sides hold only rounding noise: the biases of Linears
 * followed by batch-statistics BatchNorm, and the 1x1x1 residual conv of encoder1 (one input channel, then
 * InstanceNorm: the output does not depend on the weight's scale; float64 gives 3e-7 against PyTorch's 6e-5 of
 * noise). Checked on both sides: small next to the gradient of the weight beside them.
 */
const ZERO_IN_EXACT_ARITHMETIC: Readonly<Record<string, readonly [string, number]>> = {
  'grad.student.layer1.0.bias': ['grad.student.layer1.0.weight', 1e-5],
  'grad.student.layer2.0.bias': ['grad.student.layer2.0.weight', 1e-5],
  'grad.backbone.encoder1.layer.conv3.conv.weight': ['grad.backbone.encoder1.layer.conv1.conv.weight', 0.5],
};

describeFixture('VoCo tiny (fs 12, roi 64, 1 + 9 crops) equals the upstream PyTorch training step', () => {
  let ours: TensorMap;
  let expected: TensorMap;
  let tmp: string;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-grad-'));
    const out = path.join(tmp, 'grad.safetensors');
    const timings = await writeVocoGradients(path.join(FIXTURE, 'weights.safetensors'), path.join(FIXTURE, 'inputs.safetensors'), out, {
      intermediates: true,
    });
    process.stdout.write(`voco grad tiny: graphs and sessions ${timings.sessionSeconds} s, runs ${timings.runSeconds} s\n`);
    ours = readSafetensors(out);
    expected = readSafetensors(path.join(FIXTURE, 'expected.safetensors'));
  }, 600_000);

  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('backbone, heads and logits match (debug intermediates)', () => {
    const names = ['swin.hidden0', 'swin.hidden1', 'swin.hidden2', 'swin.hidden3', 'swin.hidden4', 'student', 'teacher', 'logits.intra0'];
    for (const name of names) expect([name, ours.get(name)?.shape]).toEqual([name, expected.get(name)?.shape]);
    expect(overBound(names, (n) => maxRelative(values(ours.get(n)), values(expected.get(n))), () => 1e-4)).toEqual([]);
  });

  test('loss parts and embeddings within 1e-4 relative', () => {
    const names = ['loss', 'loss.intra', 'loss.inter', 'loss.reg', 'embeddings'];
    for (const name of names) expect([name, ours.get(name)?.shape]).toEqual([name, expected.get(name)?.shape]);
    expect(overBound(names, (n) => maxRelative(values(ours.get(n)), values(expected.get(n))), () => 1e-4)).toEqual([]);
  });

  test('the EMA teacher equals 0.9 * teacher + 0.1 * student to float32 rounding', () => {
    const names = [...expected.keys()].filter((k) => k.startsWith('ema.'));
    expect(names).toHaveLength(6);
    const ulps = (n: string): number => {
      const a = values(ours.get(n));
      const b = values(expected.get(n));
      let worst = 0;
      for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]) * 2 ** -23, 1e-45));
      return worst;
    };
    expect(overBound(names, ulps, () => 1)).toEqual([]);
  });

  test('every gradient within 1e-3 relative L2 (the float32-ill-conditioned ones within their documented bounds)', () => {
    const names = [...expected.keys()].filter((k) => k.startsWith('grad.'));
    expect(names.length).toBeGreaterThan(140);
    expect(new Set([...ours.keys()].filter((k) => k.startsWith('grad.')))).toEqual(new Set(names));
    const regular = names.filter((n) => !(n in ZERO_IN_EXACT_ARITHMETIC));
    expect(overBound(regular, (n) => relativeL2(values(ours.get(n)), values(expected.get(n))), (n) => ILL_CONDITIONED[n] ?? 1e-3)).toEqual([]);
    const zero = Object.keys(ZERO_IN_EXACT_ARITHMETIC);
    for (const side of [ours, expected]) {
      const relativeToSibling = (n: string) => norm(values(side.get(n))) / norm(values(expected.get(ZERO_IN_EXACT_ARITHMETIC[n][0])));
      expect(overBound(zero, relativeToSibling, (n) => ZERO_IN_EXACT_ARITHMETIC[n][1])).toEqual([]);
    }
  });
});
