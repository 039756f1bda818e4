import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildVocoGraph } from '../../graph/models/voco/model';
import { resolveVocoOptions } from '../../graph/models/voco/options';
import { stateDictEntries } from '../../graph/models/swinunetr-encoder';
import { BufferMismatchError, exportVocoStateDict, featureSizeOf, importVocoWeights } from '../../graph/models/voco/weights';
import { PARAMETERS_GROUP, saveCheckpoint } from '../../io/checkpoint';
import { StateDictMismatchError } from '../../io/weights/errors';
import { readSafetensors, writeSafetensors } from '../../io/weights/safetensors';
import { namedTensor } from '../../io/weights/tensor-map';
import { REFERENCE } from '../helpers/reference';

const WEIGHTS = path.join(REFERENCE, 'model/tiny12_r64_b1/weights.safetensors');
const describeFixture = fs.existsSync(WEIGHTS) ? describe : describe.skip;

describeFixture('VoCo weights move both ways under the upstream state-dict names', () => {
  const vg = buildVocoGraph(resolveVocoOptions({ preset: 'tiny', featureDropout: 0 }), 'train');
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-weights-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('import, export and re-read give the upstream file back tensor for tensor', () => {
    const original = readSafetensors(WEIGHTS);
    expect(featureSizeOf(WEIGHTS, original)).toBe(12);
    const values = importVocoWeights(WEIGHTS, vg, original);
    expect(values.size).toBe(vg.graph.parameters.length);
    const file = path.join(tmp, 'exported.safetensors');
    writeSafetensors(file, exportVocoStateDict(vg, values));
    const back = readSafetensors(file);
    expect([...back.keys()]).toEqual(stateDictEntries(vg).map((e) => e.name));
    expect([...back.keys()].sort()).toEqual([...original.keys()].sort());
    const bytes = (t: { data: ArrayBufferView }) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const differing = [...original].filter(([name, t]) => {
      const b = back.get(name)!;
      return b.dtype !== t.dtype || b.shape.join() !== t.shape.join() || !bytes(b).equals(bytes(t));
    });
    expect(differing.map(([name]) => name)).toEqual([]);
  });

  test('a training checkpoint (parameters and state, no buffers) imports to the same values', () => {
    const values = importVocoWeights(WEIGHTS, vg);
    const parameters = new Map([...values].map(([name, data]) => [name, namedTensor(name, 'float32', vg.graph.parameters.find((p) => p.tensor.name === name)!.tensor.shape, data)]));
    const file = saveCheckpoint(path.join(tmp, 'ckpt'), { step: 7, groups: new Map([[PARAMETERS_GROUP, parameters]]), meta: {} }, 1);
    const back = importVocoWeights(file, vg);
    expect([...back.keys()]).toEqual([...values.keys()]);
    expect([...back].filter(([name, data]) => !Buffer.from(data.buffer, data.byteOffset, data.byteLength).equals(Buffer.from(values.get(name)!.buffer, values.get(name)!.byteOffset, values.get(name)!.byteLength)))).toEqual([]);
  });

  test('a relative-position index that is not the 7^3 one is refused', () => {
    const tensors = readSafetensors(WEIGHTS);
    const key = 'backbone.swinViT.layers2.0.blocks.1.attn.relative_position_index';
    const bad = (tensors.get(key)!.data as BigInt64Array).slice();
    bad[5] += 1n;
    tensors.set(key, namedTensor(key, 'int64', [343, 343], bad));
    const file = path.join(tmp, 'bad-index.safetensors');
    writeSafetensors(file, tensors.values());
    expect(() => importVocoWeights(file, vg)).toThrow(BufferMismatchError);
    expect(() => importVocoWeights(file, vg)).toThrow(`${file}: ${key} is not the relative-position index of a 7^3 window`);
  });

  test('a missing or mis-shaped key is a StateDictMismatchError naming it', () => {
    const tensors = readSafetensors(WEIGHTS);
    tensors.delete('teacher.layer3.0.bias');
    const file = path.join(tmp, 'missing.safetensors');
    writeSafetensors(file, tensors.values());
    expect(() => importVocoWeights(file, vg)).toThrow(StateDictMismatchError);
    expect(() => importVocoWeights(file, vg)).toThrow(/Missing key\(s\) in state_dict: "teacher\.layer3\.0\.bias"/);
  });
});
