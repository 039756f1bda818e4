import * as fs from 'fs';
import * as path from 'path';
import { stateDictEntries } from '../../graph/models/swinunetr-encoder';
import { buildSegmenterGraph, buildSwinUnetrTrainingGraph } from '../../graph/models/swinunetr/model';
import { SwinUnetrOptionError, resolveSwinUnetrOptions } from '../../graph/models/swinunetr/options';
import { REFERENCE } from '../helpers/reference';

const SHAPES_FILE = path.join(REFERENCE, 'segmentation/swinunetr_state_dict_shapes.json');
const haveShapes = fs.existsSync(SHAPES_FILE);
if (!haveShapes) console.log(`skipped SwinUNETR state-dict tests: no ${SHAPES_FILE}`);
const testWithShapes = haveShapes ? test : test.skip;

interface PresetShapes {
  readonly feature_size: number;
  readonly in_channels: number;
  readonly out_channels: number;
  readonly counts: { readonly parameters: number; readonly state_dict_elements: number };
  readonly int64_buffers: readonly string[];
  readonly state_dict: Readonly<Record<string, { readonly shape: number[]; readonly dtype: string }>>;
}

const presets = (): Record<string, PresetShapes> => JSON.parse(fs.readFileSync(SHAPES_FILE, 'utf8')).presets;
const PRESETS = ['tiny', 'B', 'L', 'B_in4'];

describe('SwinUNETR graph', () => {
  testWithShapes.each(PRESETS)('preset %s has exactly MONAI state-dict keys, shapes, dtypes and order', (name) => {
    const reference = presets()[name];
    const options = resolveSwinUnetrOptions({
      featureSize: reference.feature_size,
      inChannels: reference.in_channels,
      outChannels: reference.out_channels,
      roi: 96,
      batchSize: 1,
    });
    const net = buildSegmenterGraph(options);
    const entries = stateDictEntries(net);
    expect(entries.map((e) => [e.name, [...e.shape], e.dtype])).toEqual(
      Object.entries(reference.state_dict).map(([k, v]) => [k, v.shape, v.dtype]),
    );
    expect(entries.filter((e) => e.kind === 'buffer').map((e) => e.name)).toEqual(reference.int64_buffers);
    const parameters = entries.filter((e) => e.kind === 'parameter');
    expect(parameters.reduce((n, e) => n + e.shape.reduce((a, b) => a * b, 1), 0)).toBe(reference.counts.parameters);
    expect(entries.some((e) => e.kind === 'state')).toBe(false);
  });

  test('the training graph takes image and label and gives the logits, the loss and its parts', () => {
    const options = resolveSwinUnetrOptions({ preset: 'tiny', inChannels: 4, outChannels: 3, roi: 64, batchSize: 2 });
    const tg = buildSwinUnetrTrainingGraph(options);
    expect(tg.graph.inputs.map((t) => [t.name, t.shape])).toEqual([
      ['image', [2, 4, 64, 64, 64]],
      ['label', [2, 1, 64, 64, 64]],
    ]);
    expect(Object.fromEntries(Object.entries(tg.outputs).map(([k, t]) => [k, t.shape]))).toEqual({
      loss: [],
      'loss.dice': [],
      'loss.ce': [],
      'loss.dice.per_item_class': [2, 2],
      logits: [2, 3, 64, 64, 64],
    });
    expect(buildSegmenterGraph(options, 3).image.shape).toEqual([3, 4, 64, 64, 64]);
  });

  test('presets give MONAI feature sizes, upstream defaults fill the rest', () => {
    expect(resolveSwinUnetrOptions({ preset: 'H' })).toEqual({ featureSize: 192, inChannels: 1, outChannels: 14, roi: 96, batchSize: 4 });
    expect(resolveSwinUnetrOptions({ preset: 'tiny', featureSize: 24 }).featureSize).toBe(24);
  });

  test.each([
    [{ featureSize: 50 }, /feature size must be a multiple of 12 .*, got 50/],
    [{ roi: 80 }, /roi must be a multiple of 32, got 80/],
    [{ inChannels: 0 }, /--in-channels must be a positive integer, got 0/],
    [{ outChannels: 1 }, /--out-channels counts the background too and must be at least 2, got 1/],
    [{ batchSize: 1.5 }, /batch size must be a positive integer, got 1.5/],
    [{ preset: 'XL' as never }, /--preset XL is not one of tiny, B, L, H/],
  ])('bad options %j give one clear SwinUnetrOptionError line', (input, message) => {
    const attempt = () => resolveSwinUnetrOptions(input);
    expect(attempt).toThrow(SwinUnetrOptionError);
    expect(attempt).toThrow(message);
  });
});
