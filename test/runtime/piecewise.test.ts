import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { onnx } from 'onnx-proto';
import { Rng } from '../../common/rng';
import { size } from '../../graph/core/shape';
import { buildVocoGraph } from '../../graph/models/voco/model';
import { resolveVocoOptions } from '../../graph/models/voco/options';
import { writeVocoArtifacts } from '../../graph/models/voco/artifacts';
import { BACKBONE_BACKWARD_MODEL, BACKBONE_FORWARD_MODEL, HEADS_TRAINING_MODEL } from '../../graph/models/voco/pieces';
import { MANIFEST_FILE, ManifestError, readManifest } from '../../graph/onnx/manifest';
import { Trainer } from '../../runtime/session/trainer';
import { keepMask } from '../../runtime/voco/masks';
import { relativeL2OfAny } from '../helpers/relative-error';

describe('a VoCo step in pieces', () => {
  // tiny, roi 32, 1 volume with 1 random crop and 9 base crops: 10 rows, 2 per piece (the first piece spans the
  // images and the crops). Feature dropout and drop path on, so their masks have to reach the right rows.
  const options = resolveVocoOptions({ preset: 'tiny', roi: 32, batchSize: 1, swBatchSize: 1, featureDropout: 0.2, dropPathRate: 0.5 });
  let dir: string;
  let feeds: Record<string, Float32Array>;
  let pieces: Trainer;
  let single: Trainer;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-pieces-'));
    writeVocoArtifacts(dir, options, { optimizer: { kind: 'adamw', amsgrad: true }, encoderBatch: 1, cropsPerRun: 3 });
    const rng = new Rng(7);
    const voxels = options.roi ** 3;
    feeds = {
      images: Float32Array.from({ length: voxels }, () => rng.uniform()),
      crops: Float32Array.from({ length: 9 * voxels }, () => rng.uniform()),
      labels: Float32Array.from({ length: 9 }, () => rng.uniform() / 9),
    };
    buildVocoGraph(options, 'train').inputs.masks.forEach((m, i) => {
      feeds[m.tensor.name] = keepMask(new Rng(100 + i), size(m.tensor.shape), m.p);
    });
    pieces = await Trainer.load(dir, { seed: 3, threads: 1 });
    single = await Trainer.load(dir, { seed: 3, threads: 1, piecewise: false });
  }, 120_000);

  afterAll(async () => {
    await Promise.all([pieces?.release(), single?.release()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the manifest names the three piece models and the rows per piece', () => {
    const manifest = readManifest(dir);
    expect(manifest.pieces).toMatchObject({ cropsPerRun: 2, rows: 10, rowSources: ['images', 'crops'] });
    const p = manifest.pieces!;
    expect([p.models.backboneForward.file, p.models.backboneBackward.file, p.models.heads.file]).toEqual([BACKBONE_FORWARD_MODEL, BACKBONE_BACKWARD_MODEL, HEADS_TRAINING_MODEL]);
    const batchInputs = (m: typeof p.models.heads) => m.inputs.filter((i) => i.role === 'input');
    expect(batchInputs(p.models.backboneForward).map((i) => i.shape[0])).toEqual(batchInputs(p.models.backboneForward).map(() => 2));
    expect(batchInputs(p.models.backboneForward).some((i) => i.name.includes('drop_path'))).toBe(true);
    expect(batchInputs(p.models.heads).map((i) => i.name)).toEqual(['embeddings', 'labels', 'feature_dropout_mask']);
    const gradients = [p.models.heads, p.models.backboneBackward].flatMap((m) => m.outputs.filter((o) => o.role === 'gradient').map((o) => o.name));
    expect(gradients.sort()).toEqual(manifest.models.training.outputs.filter((o) => o.role === 'gradient').map((o) => o.name).sort());
    // The backward reads the forward's attention outputs and runs no Attention node itself. At roi 32 the stages
    // hold 16^3, 8^3, 4^3 and 2^3 tokens: one node per plain block, and per shifted block one per mask class
    // (8 where the windows are 3^3 or 2^3 per sample; the last two stages' windows shrink, so do not shift).
    const attentionNodes = (file: string) => onnx.ModelProto.decode(fs.readFileSync(path.join(dir, file))).graph!.node!.filter((n) => n.opType === 'Attention').length;
    expect(p.saved).toHaveLength(1 + 8 + 1 + 8 + 1 + 1 + 1 + 1);
    expect(p.models.backboneForward.outputs.map((o) => o.name)).toEqual(expect.arrayContaining([...p.saved!]));
    expect(p.models.backboneBackward.inputs.map((i) => i.name)).toEqual(expect.arrayContaining([...p.saved!]));
    expect([attentionNodes(p.models.backboneForward.file), attentionNodes(p.models.backboneBackward.file)]).toEqual([22, 0]);

    // A folder whose manifest names piece models that are not there does not read as complete.
    const partial = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-pieces-partial-'));
    try {
      for (const m of [MANIFEST_FILE, manifest.models.training.file, manifest.models.eval.file, manifest.models.optimizer.file]) fs.copyFileSync(path.join(dir, m), path.join(partial, m));
      expect(() => readManifest(partial)).toThrow(new ManifestError(path.join(partial, MANIFEST_FILE), 'the backboneForward piece model is missing'));
    } finally {
      fs.rmSync(partial, { recursive: true, force: true });
    }
  });

  test('loss, extras, every gradient and the AdamW step\'s parameters and moments equal the training model\'s', async () => {
    // The masks drop something, or the test would not see them misplaced.
    expect(Object.entries(feeds).some(([name, m]) => name.includes('drop_path') && m.includes(0))).toBe(true);
    expect(feeds.feature_dropout_mask.includes(0)).toBe(true);
    const run = async (trainer: Trainer) => {
      const gradients = new Map<string, Float32Array>();
      const result = await trainer.step(feeds, { lr: 1e-4, gradientHook: (g) => g.forEach((v, name) => gradients.set(name, Float32Array.from(v))) });
      return { ...result, gradients };
    };
    const [a, b] = [await run(pieces), await run(single)];
    expect([a.step, b.step]).toEqual([1, 1]);
    expect(Math.abs(a.loss - b.loss) / Math.abs(b.loss)).toBeLessThan(1e-5);
    expect(Object.keys(a.extras).sort()).toEqual(Object.keys(b.extras).sort());
    const extraErrors = Object.entries(b.extras).map(([name, t]) => [name, relativeL2OfAny(a.extras[name].data as Float32Array, t.data as Float32Array)] as const);
    expect(extraErrors.filter(([, e]) => !(e < 1e-5))).toEqual([]);
    expect([...a.gradients.keys()].sort()).toEqual([...b.gradients.keys()].sort());
    const gradientErrors = [...b.gradients].map(([name, g]) => [name, relativeL2OfAny(a.gradients.get(name)!, g)] as const);
    expect(gradientErrors.filter(([, e]) => !(e < 1e-4))).toEqual([]);
    const stateErrors = (['parameters', 'optimizerState'] as const).flatMap((store) =>
      single[store].names().map((name) => [name, relativeL2OfAny(pieces[store].get(name) as Float32Array, single[store].get(name) as Float32Array)] as const),
    );
    expect(stateErrors.filter(([, e]) => !(e < 1e-4))).toEqual([]);
    const worst = (errors: readonly (readonly [string, number])[]) => Math.max(...errors.map(([, e]) => e)).toExponential(2);
    process.stdout.write(
      `pieces vs training model: loss ${a.loss} vs ${b.loss}; worst rel-L2 of extras ${worst(extraErrors)}, ` +
        `of gradients ${worst(gradientErrors)}, of parameters and moments after the step ${worst(stateErrors)}\n`,
    );
  }, 120_000);
});
