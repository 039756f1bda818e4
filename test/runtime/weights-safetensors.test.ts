import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { WeightFileError } from '../../io/weights/errors';
import { writeFileAtomically } from '../../common/atomic-file';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../../io/weights/safetensors';
import { NamedTensor, toFloat32 } from '../../io/weights/tensor-map';
import { REFERENCE, everyDtype, expectSameTensors } from './weights-helpers';
import { referenceTest } from '../helpers/reference';

const TINY_WEIGHTS = path.join(REFERENCE, 'model/tiny12_r64_b1/weights.safetensors');
const CHECKPOINT_EXPECTED = path.join(REFERENCE, 'checkpoints/expected.safetensors');

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-safetensors-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('safetensors', () => {
  test('round trip keeps every dtype, shape, value, order and the metadata; header padded to 8 bytes', () => {
    const file = path.join(dir, 'all.safetensors');
    writeSafetensors(file, everyDtype(), { format: 'pt', note: 'héllo' });
    expectSameTensors(readSafetensors(file).values(), everyDtype());
    expect(readSafetensorsHeader(file).metadata).toEqual({ format: 'pt', note: 'héllo' });
    const headerLength = Number(fs.readFileSync(file).readBigUInt64LE(0));
    expect(headerLength % 8).toBe(0);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  referenceTest('reads the reference weights with their upstream names, shapes and dtypes', () => {
    const header = readSafetensorsHeader(TINY_WEIGHTS);
    const shapes = JSON.parse(fs.readFileSync(path.join(REFERENCE, 'model/voco_state_dict_shapes.json'), 'utf8')).B as Record<string, number[]>;
    // The tiny model is preset B with feature size 12: the same names in the same order.
    expect(header.entries.map((e) => e.name)).toEqual(Object.keys(shapes));
    const byName = new Map(header.entries.map((e) => [e.name, e]));
    expect(byName.get('backbone.swinViT.patch_embed.proj.weight')).toMatchObject({ dtype: 'float32', shape: [12, 1, 2, 2, 2] });
    expect(byName.get('backbone.swinViT.layers1.0.blocks.0.attn.relative_position_index')).toMatchObject({ dtype: 'int64', shape: [343, 343] });
    expect(byName.get('backbone.encoder10.layer.conv1.conv.weight')?.shape).toEqual([192, 192, 3, 3, 3]);
  });

  referenceTest('reads only the named tensors, equal to the same tensors of another file', () => {
    const expected = readSafetensors(CHECKPOINT_EXPECTED);
    const subset = readSafetensors(TINY_WEIGHTS, expected.keys());
    expectSameTensors(subset.values(), expected.values());
    expect(toFloat32(subset.get('student.layer3.0.bias') as NamedTensor).data[0]).toBeCloseTo(-0.010157, 6);
    expect(() => readSafetensors(TINY_WEIGHTS, ['no.such.tensor'])).toThrow(/weights\.safetensors: has no tensor "no\.such\.tensor"/);
  });

  test('reads one tensor lying 5 GB into a file without reading the rest', () => {
    // A sparse file: a 5 GB float32 tensor of zeros that is never written, then the tensor we want.
    const file = path.join(dir, 'sparse.safetensors');
    const bigBytes = 5 * 2 ** 30;
    const json = JSON.stringify({
      big: { dtype: 'F32', shape: [bigBytes / 4], data_offsets: [0, bigBytes] },
      small: { dtype: 'I32', shape: [2], data_offsets: [bigBytes, bigBytes + 8] },
    }).padEnd(256);
    const fd = fs.openSync(file, 'w');
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(256n);
    fs.writeSync(fd, Buffer.concat([head, Buffer.from(json)]));
    fs.writeSync(fd, new Uint8Array(Int32Array.from([-3, 7]).buffer), 0, 8, 8 + 256 + bigBytes);
    fs.closeSync(fd);
    const small = readSafetensors(file, ['small']).get('small');
    expect(small).toMatchObject({ dtype: 'int32', shape: [2] });
    expect(Array.from(small?.data as Int32Array)).toEqual([-3, 7]);
    fs.rmSync(file);
  });

  describe('refuses bad files with an error naming the file', () => {
    const header = (json: unknown, data = 0, padTo?: number) => {
      let text = typeof json === 'string' ? json : JSON.stringify(json);
      if (padTo) text = text.padEnd(padTo);
      const head = Buffer.alloc(8);
      head.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
      return Buffer.concat([head, Buffer.from(text), Buffer.alloc(data)]);
    };
    const t = (dtype: string, shape: number[], offsets: number[]) => ({ dtype, shape, data_offsets: offsets });
    const cases: [string, Buffer, RegExp][] = [
      ['shorter than the length field', Buffer.from([1, 2, 3]), /shorter than the 8-byte header length/],
      ['header past the end', Buffer.concat([Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{}')]), /runs past the end/],
      ['huge header length', Buffer.from([0, 0, 0, 0, 0, 1, 0, 0]), /exceeds 100000000 bytes/],
      ['not JSON', header('{"a": '), /not UTF-8 JSON/],
      ['not an object', header('[1, 2]'), /not a JSON object/],
      ['unknown dtype', header({ a: t('C64', [1], [0, 8]) }, 8), /unsupported dtype "C64"/],
      ['bad shape', header({ a: t('F32', [-1], [0, 4]) }, 4), /bad shape/],
      ['size disagreeing with shape', header({ a: t('F32', [2], [0, 4]) }, 4), /spans 4 bytes, its dtype and shape need 8/],
      ['gap between tensors', header({ a: t('F32', [1], [0, 4]), b: t('F32', [1], [8, 12]) }, 12), /starts at data offset 8, expected 4/],
      ['data missing', header({ a: t('F32', [4], [0, 16]) }, 8), /cover 16 data bytes, the file holds 8/],
      ['trailing data', header({ a: t('F32', [1], [0, 4]) }, 12), /cover 4 data bytes, the file holds 12/],
      ['bad metadata', header({ __metadata__: { a: 1 } }), /"__metadata__" value "a" is not a string/],
    ];
    test.each(cases)('%s', (_, bytes, problem) => {
      const file = path.join(dir, 'bad.safetensors');
      fs.writeFileSync(file, bytes);
      expect(() => readSafetensors(file)).toThrow(WeightFileError);
      expect(() => readSafetensors(file)).toThrow(new RegExp(`^${file.replace(/[.\\/]/g, '\\$&')}: not a valid safetensors file: `));
      expect(() => readSafetensors(file)).toThrow(problem);
    });
  });
});

describe('writeFileAtomically', () => {
  test('a failed write leaves the previous file as it was and no temporary file behind', () => {
    const file = path.join(dir, 'kept.safetensors');
    writeSafetensors(file, everyDtype().slice(0, 2));
    const before = fs.readFileSync(file);
    expect(() =>
      writeFileAtomically(file, (fd) => {
        fs.writeSync(fd, Buffer.from('partial'));
        throw new Error('disk full');
      }),
    ).toThrow('disk full');
    expect(fs.readFileSync(file)).toEqual(before);
    expect(fs.readdirSync(dir).filter((f) => f.includes('kept.safetensors') && f !== 'kept.safetensors')).toEqual([]);
  });
});
