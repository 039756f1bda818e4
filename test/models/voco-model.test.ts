import * as fs from 'fs';
import * as path from 'path';
import { PRESET_FEATURE_SIZE, VocoModelOptionError, resolveVocoOptions } from '../../graph/models/voco/options';
import { buildEncoderGraph, buildVocoGraph, embeddingWidth } from '../../graph/models/voco/model';
import { stateDictEntries } from '../../graph/models/swinunetr-encoder';
import { REFERENCE } from '../helpers/reference';

const shapesFile = path.join(REFERENCE, 'model/voco_state_dict_shapes.json');
const testWithShapes = fs.existsSync(shapesFile) ? test : test.skip;

describe('VoCo model graph', () => {
  testWithShapes.each(['B', 'L', 'H'] as const)('preset %s has exactly the upstream state-dict names, shapes and order', (preset) => {
    const reference = JSON.parse(fs.readFileSync(shapesFile, 'utf8'))[preset] as Record<string, number[]>;
    const started = Date.now();
    const vg = buildVocoGraph(resolveVocoOptions({ preset, featureDropout: 0 }), 'train');
    const entries = stateDictEntries(vg);
    expect(entries.map((e) => [e.name, [...e.shape]])).toEqual(Object.entries(reference));
    expect(Date.now() - started).toBeLessThan(10_000);
    const count = (kind: string) => entries.filter((e) => e.kind === kind).length;
    expect(count('buffer')).toBe(8);
    expect(entries.filter((e) => e.kind === 'buffer').every((e) => e.dtype === 'int64')).toBe(true);
    // Trainable: backbone + student; the teacher is state updated by EMA.
    expect(count('state')).toBe(6);
    expect(vg.trainable.every((t) => !t.name.startsWith('teacher.'))).toBe(true);
    expect(Object.keys(vg.outputs).filter((k) => k.startsWith('ema.')).sort()).toEqual(
      vg.teacher.map((t) => `ema.${t.name}`).sort(),
    );
  });

  test('presets map to feature sizes and the embedding is 24 * feature size wide', () => {
    expect(PRESET_FEATURE_SIZE).toEqual({ tiny: 12, B: 48, L: 96, H: 192 });
    const vg = buildVocoGraph(resolveVocoOptions({ preset: 'tiny', batchSize: 2, swBatchSize: 3 }), 'train');
    expect(vg.outputs.embeddings.shape).toEqual([2 * 3 + 2 * 9, embeddingWidth(12)]);
    expect(vg.outputs['logits.intra'].shape).toEqual([2, 3, 9]);
    expect(vg.outputs.loss.shape).toEqual([]);
    expect(vg.inputs.masks.map((m) => [m.tensor.name, m.tensor.shape, m.p])).toEqual([['feature_dropout_mask', [24, 1], 0.2]]);
  });

  test('feature dropout 0 needs no mask; drop path adds one keep-mask input per residual branch with p > 0', () => {
    const off = buildVocoGraph(resolveVocoOptions({ preset: 'tiny', featureDropout: 0 }), 'train');
    expect(off.inputs.masks).toEqual([]);
    expect(off.graph.inputs.map((t) => t.name)).toEqual(['images', 'crops', 'labels']);
    const dp = buildVocoGraph(resolveVocoOptions({ preset: 'tiny', featureDropout: 0, dropPathRate: 0.1 }), 'train');
    // Eight blocks, rates linspace(0, 0.1, 8): block 0 has rate 0, the other seven two branches each.
    expect(dp.inputs.masks).toHaveLength(14);
    expect(dp.inputs.masks[0].tensor.name).toBe('drop_path.layers1.0.blocks.1.attn');
    expect(dp.inputs.masks[0].tensor.shape).toEqual([10, 1, 1, 1, 1]);
    expect(dp.inputs.masks[13].p).toBeCloseTo(0.1, 12);
    const evaluation = buildVocoGraph(resolveVocoOptions({ preset: 'tiny', dropPathRate: 0.1 }), 'eval');
    expect(evaluation.inputs.masks).toEqual([]);
    expect(Object.keys(evaluation.outputs).some((k) => k.startsWith('ema.'))).toBe(false);
  });

  test('the encoder graph takes crops and gives the five stage features and the embedding', () => {
    const enc = buildEncoderGraph({ featureSize: 12, roi: 64 }, 2);
    expect(enc.graph.inputs.map((t) => [t.name, t.shape])).toEqual([['crops', [2, 1, 64, 64, 64]]]);
    expect(Object.fromEntries(Object.entries(enc.outputs).map(([k, t]) => [k, t.shape]))).toEqual({
      hidden0: [2, 12, 32, 32, 32],
      hidden1: [2, 24, 16, 16, 16],
      hidden2: [2, 48, 8, 8, 8],
      hidden3: [2, 96, 4, 4, 4],
      hidden4: [2, 192, 2, 2, 2],
      embedding: [2, 288],
    });
  });

  test.each([
    [{ featureSize: 50 }, /feature size must be a multiple of 12 .*, got 50/],
    [{ roi: 48 }, /roi must be a multiple of 32, got 48/],
    [{ batchSize: 0 }, /batch size must be a positive integer, got 0/],
    [{ swBatchSize: 1.5 }, /sw batch size must be a positive integer, got 1.5/],
    [{ featureDropout: 1 }, /feature dropout must be in \[0, 1\), got 1/],
    [{ preset: 'XL' as never }, /--preset XL is not one of tiny, B, L, H/],
  ])('bad options %j give one clear VocoModelOptionError line', (input, message) => {
    let error: unknown;
    try {
      resolveVocoOptions(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(VocoModelOptionError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('\n');
  });
});
