import { f16round } from '@petamoriken/float16';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { StateDictMismatchError, WeightFileError } from '../../io/weights/errors';
import { importWeights } from '../../io/weights/load-weights';
import { readSafetensors, writeSafetensors } from '../../io/weights/safetensors';
import { matchStateDict, normaliseKey, normaliseStateDict } from '../../io/weights/state-dict';
import { NamedTensor, namedTensor, tensorMap, toFloat32 } from '../../io/weights/tensor-map';
import { readTorchCheckpoint } from '../../io/weights/torch-reader';
import { REFERENCE, expectSameTensors } from './weights-helpers';
import { HAVE_REFERENCE, referenceDescribe, referenceTest } from '../helpers/reference';

const CHECKPOINTS = path.join(REFERENCE, 'checkpoints');
// Without the fixtures the tests that use them are skipped (referenceDescribe, referenceTest).
const expected = HAVE_REFERENCE ? readSafetensors(path.join(CHECKPOINTS, 'expected.safetensors')) : new Map();
const expectedShapes = new Map([...expected.values()].map((t) => [t.name, t.shape]));
const HEAD_KEYS = ['student.layer3.0.bias', 'teacher.layer3.0.bias'];

const importFile = (name: string, strict = false) => {
  const file = path.join(CHECKPOINTS, name);
  return matchStateDict(normaliseStateDict(readTorchCheckpoint(file), file), expectedShapes, { strict, file });
};

describe('key normalisation', () => {
  test.each([
    ['module.backbone.swinViT.patch_embed.proj.weight', 'swinViT.patch_embed.proj.weight'],
    ['backbone.encoder1.layer.conv1.conv.weight', 'encoder1.layer.conv1.conv.weight'],
    ['swin_vit.layers1.0.blocks.0.norm1.weight', 'swinViT.layers1.0.blocks.0.norm1.weight'],
    ['module.student.layer3.0.bias', 'student.layer3.0.bias'],
    ['teacher.layer1.0.weight', 'teacher.layer1.0.weight'],
    ['encoder1.module.x', 'encoder1.module.x'],
  ])('%s -> %s', (key, normalised) => expect(normaliseKey(key)).toBe(normalised));

  test('unwraps state_dict, network_weights, net, student or model, in that order, or takes the dict itself', () => {
    const t = (name: string) => namedTensor(name, 'float32', [1], Float32Array.from([name.length]));
    const dict = (...names: string[]) => new Map(names.map((n) => [n, t(n)]));
    const keysOf = (root: unknown) => [...normaliseStateDict(root, 'x.pt').keys()];
    expect(keysOf(new Map<string, unknown>([['epoch', 3], ['state_dict', dict('module.a')], ['net', dict('b')]]))).toEqual(['a']);
    expect(keysOf(new Map<string, unknown>([['network_weights', dict('c')], ['net', dict('b')]]))).toEqual(['c']);
    expect(keysOf(new Map<string, unknown>([['net', dict('backbone.swin_vit.d')]]))).toEqual(['swinViT.d']);
    expect(keysOf(new Map<string, unknown>([['best_acc', 0.8], ['student', dict('g')], ['model', dict('h')]]))).toEqual(['g']);
    expect(keysOf(new Map<string, unknown>([['epoch', 3], ['model', dict('module.h')]]))).toEqual(['h']);
    expect(keysOf(dict('e', 'f'))).toEqual(['e', 'f']);
    expect(() => normaliseStateDict(new Map<string, unknown>([['epoch', 3], ['weights', dict('a')]]), 'x.pt')).toThrow(
      /^x\.pt: entry "epoch" is not a tensor; .* \(keys seen: epoch, weights\)$/,
    );
    expect(() => normaliseStateDict([1, 2], 'x.pt')).toThrow(WeightFileError);
    expect(() => normaliseStateDict(dict('module.a', 'a'), 'x.pt')).toThrow('x.pt: keys "module.a" and "a" both normalise to "a"');
  });
});

test('widening to float32 is exact for float16 and bfloat16, including subnormals, infinities and NaN', () => {
  const half = namedTensor('h', 'float16', [7], Uint16Array.from([0x3c00, 0xc000, 0x0001, 0x03ff, 0x7bff, 0xfc00, 0x7e00]));
  expect(Array.from(toFloat32(half).data)).toEqual([1, -2, 2 ** -24, 1023 * 2 ** -24, 65504, -Infinity, NaN]);
  const brain = namedTensor('b', 'bfloat16', [3], Uint16Array.from([0x3f80, 0xc040, 0x0001]));
  expect(Array.from(toFloat32(brain).data)).toEqual([1, -3, new Float32Array(new Uint32Array([0x00010000]).buffer)[0]]);
  expect(Array.from(toFloat32(namedTensor('d', 'float64', [1], Float64Array.from([0.1]))).data)).toEqual([Math.fround(0.1)]);
  expect(() => toFloat32(namedTensor('i', 'int32', [1], Int32Array.from([1])))).toThrow('cannot convert int32 to float32');
});

referenceDescribe('importing the checkpoint fixtures', () => {
  test.each(['ddp_training.pt', 'raw_state_dict.pt', 'legacy_format.pt'])('%s yields exactly expected.safetensors, strictly', (name) => {
    const match = importFile(name, true);
    expect(match).toMatchObject({ missing: [], unexpected: [], mismatched: [] });
    expectSameTensors(match.tensors.values(), expected.values());
  });

  test('backbone_fp16.pt yields the backbone tensors widened from float16, the heads reported missing', () => {
    const match = importFile('backbone_fp16.pt');
    expect(match).toMatchObject({ missing: HEAD_KEYS, unexpected: [], mismatched: [] });
    const backbone = [...expected.values()].filter((t) => !HEAD_KEYS.includes(t.name));
    expect([...match.tensors.keys()]).toEqual(backbone.map((t) => t.name));
    for (const want of backbone) {
      const got = match.tensors.get(want.name) as NamedTensor;
      expect(got.dtype).toBe(want.dtype);
      if (want.dtype === 'int64') expect(got.data).toEqual(want.data);
      else expect(Array.from(got.data as Float32Array)).toEqual(Array.from(want.data as Float32Array, f16round));
    }
    expect(() => importFile('backbone_fp16.pt', true)).toThrow(
      `backbone_fp16.pt: Error(s) in loading state_dict: Missing key(s) in state_dict: "student.layer3.0.bias", "teacher.layer3.0.bias".`,
    );
  });
});

describe('matching against the model', () => {
  const loaded = tensorMap([
    namedTensor('swinViT.a.weight', 'float32', [2, 2], new Float32Array(4)),
    namedTensor('swinViT.b.weight', 'bfloat16', [2], Uint16Array.from([0x3f80, 0x4000])),
    namedTensor('encoder1.c', 'float32', [3], new Float32Array(3)),
    namedTensor('extra.d', 'float32', [1], new Float32Array(1)),
  ]);
  const model = {
    'backbone.swinViT.b.weight': [2],
    'backbone.swinViT.a.weight': [2, 2],
    'backbone.encoder1.c': [4],
    'student.e': [5],
  };

  test('reports missing, unexpected and mis-shaped keys; matched tensors in model order, widened', () => {
    const match = matchStateDict(loaded, model);
    expect(match.missing).toEqual(['student.e']);
    expect(match.unexpected).toEqual(['extra.d']);
    expect(match.mismatched).toEqual([{ name: 'backbone.encoder1.c', checkpointShape: [3], modelShape: [4] }]);
    expect([...match.tensors.keys()]).toEqual(['backbone.swinViT.b.weight', 'backbone.swinViT.a.weight']);
    expect(match.tensors.get('backbone.swinViT.b.weight')).toMatchObject({ dtype: 'float32', data: Float32Array.from([1, 2]) });
  });

  test('strict loading fails with the PyTorch message', () => {
    expect(() => matchStateDict(loaded, model, { strict: true, file: 'w.pt' })).toThrow(StateDictMismatchError);
    expect(() => matchStateDict(loaded, model, { strict: true, file: 'w.pt' })).toThrow(
      'w.pt: Error(s) in loading state_dict: Missing key(s) in state_dict: "student.e". Unexpected key(s) in state_dict: "extra.d". ' +
        'size mismatch for backbone.encoder1.c: copying a param with shape [3] from checkpoint, the shape in current model is [4].',
    );
  });

  referenceTest('the reference weights match preset B by name and differ in shape only where feature size counts', () => {
    const tiny = readSafetensors(path.join(REFERENCE, 'model/tiny12_r64_b1/weights.safetensors'));
    const shapesB = JSON.parse(fs.readFileSync(path.join(REFERENCE, 'model/voco_state_dict_shapes.json'), 'utf8')).B as Record<string, number[]>;
    const match = matchStateDict(normaliseStateDict(tiny, 'weights.safetensors'), shapesB);
    expect(match.missing).toEqual([]);
    expect(match.unexpected).toEqual([]);
    const same = [...match.tensors.keys()];
    // Relative-position tables depend on the head counts and the projection heads are 1024 wide at any feature size.
    const independentOfFeatureSize = /relative_position_(index|bias_table)$|^(student|teacher)\.layer(1\.0\.bias|[23]\.0\.(weight|bias))$/;
    expect(same).toEqual(Object.keys(shapesB).filter((n) => independentOfFeatureSize.test(n)));
    expect(match.mismatched.length + same.length).toBe(Object.keys(shapesB).length);
  });
});

describe('importWeights', () => {
  referenceTest('takes a .safetensors or a .pt file alike; a missing file is a one-line error', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-import-'));
    try {
      const file = path.join(dir, 'upstream.safetensors');
      writeSafetensors(file, expected.values());
      for (const source of [file, path.join(CHECKPOINTS, 'ddp_training.pt')]) {
        const match = importWeights(source, expectedShapes, { strict: true });
        expectSameTensors(match.tensors.values(), expected.values());
      }
      const missing = path.join(dir, 'nope.pt');
      expect(() => importWeights(missing, expectedShapes)).toThrow(`${missing}: cannot be read (no such file)`);
      expect(() => importWeights(dir, expectedShapes)).toThrow(`${dir}: is not a regular file`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
