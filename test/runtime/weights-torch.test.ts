import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { RefusedGlobalError, WeightFileError } from '../../io/weights/errors';
import { PickleValue, pickle } from '../../io/weights/pickle-writer';
import { readSafetensors } from '../../io/weights/safetensors';
import { normaliseStateDict } from '../../io/weights/state-dict';
import { NamedTensor, TensorData, TensorMap, namedTensor, tensorBytes, toFloat32 } from '../../io/weights/tensor-map';
import { TorchTensor, readTorchCheckpoint } from '../../io/weights/torch-reader';
import { writeTorchCheckpoint } from '../../io/weights/torch-writer';
import { ZipReader, writeStoredZip } from '../../io/weights/zip-archive';
import { withFile } from '../../io/weights/file-access';
import { REFERENCE, everyDtype, expectSameTensors, runPython, withTorch } from './weights-helpers';
import { HAVE_REFERENCE, referenceTest } from '../helpers/reference';

const CHECKPOINTS = path.join(REFERENCE, 'checkpoints');

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-torch-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The tensor's values as numbers: 16-bit floats widened, the rest as stored (bool and uint8 as 0/1 numbers). */
function numbers(t: TorchTensor): number[] {
  if (t.dtype === 'int64') return Array.from(t.data as BigInt64Array, Number);
  const data = t.dtype === 'float16' || t.dtype === 'bfloat16' ? toFloat32(t).data : t.data;
  return Array.from(data as Exclude<TensorData, BigInt64Array>);
}

/** A zip checkpoint holding `root` as its pickle and the given storages, as torch.save lays it out. */
function craftCheckpoint(name: string, root: Uint8Array | PickleValue, storages: Uint8Array[] = []): string {
  const file = path.join(dir, name);
  const fd = fs.openSync(file, 'w');
  const data = root instanceof Uint8Array ? root : pickle(root);
  writeStoredZip(fd, [
    { name: 'archive/data.pkl', data },
    ...storages.map((s, i) => ({ name: `archive/data/${i}`, data: s })),
    { name: 'archive/version', data: Buffer.from('3\n') },
  ]);
  fs.closeSync(fd);
  return file;
}

const storage = (type: string, key: string, count: number): PickleValue => ({
  persistentId: { tuple: ['storage', { global: ['torch', type] }, key, 'cpu', count] },
});
const hooks: PickleValue = { call: { global: ['collections', 'OrderedDict'] }, args: [] };
const view = (key: string, count: number, offset: number, shape: number[], stride: number[]): PickleValue => ({
  call: { global: ['torch._utils', '_rebuild_tensor_v2'] },
  args: [storage('FloatStorage', key, count), offset, { tuple: shape }, { tuple: stride }, false, hooks],
});

describe('PyTorch checkpoints', () => {
  referenceTest('the four fixture layouts hold the tensors of the reference state dict', () => {
    const expected = readSafetensors(path.join(CHECKPOINTS, 'expected.safetensors'));
    const ddp = readTorchCheckpoint(path.join(CHECKPOINTS, 'ddp_training.pt')) as Map<string, unknown>;
    expect(ddp.get('global_step')).toBe(7);
    const raw = normaliseStateDict(readTorchCheckpoint(path.join(CHECKPOINTS, 'raw_state_dict.pt')), 'raw');
    const legacy = normaliseStateDict(readTorchCheckpoint(path.join(CHECKPOINTS, 'legacy_format.pt')), 'legacy');
    const normalised = normaliseStateDict(ddp, 'ddp');
    const upstream = new Map([...expected.values()].map((t) => [t.name.replace(/^backbone\./, ''), t]));
    for (const loaded of [raw, legacy, normalised]) {
      expectSameTensors(loaded.values(), [...upstream].map(([name, t]) => ({ ...t, name })));
    }
    const fp16 = readTorchCheckpoint(path.join(CHECKPOINTS, 'backbone_fp16.pt')) as Map<string, Map<string, TorchTensor>>;
    const net = fp16.get('net') as Map<string, TorchTensor>;
    expect(net.get('swin_vit.patch_embed.proj.weight')?.dtype).toBe('float16');
    expect(net.get('swin_vit.layers1.0.blocks.0.attn.relative_position_index')?.dtype).toBe('int64');
  });

  referenceTest('malicious.pt is refused, naming the global it asks for', () => {
    const file = path.join(CHECKPOINTS, 'malicious.pt');
    expect(() => readTorchCheckpoint(file)).toThrow(RefusedGlobalError);
    expect(() => readTorchCheckpoint(file)).toThrow(`${file}: refused to load global "posix.system"`);
  });

  test.each([
    ['GLOBAL + REDUCE', pickle({ call: { global: ['os', 'system'] }, args: ['touch pwned'] }), 'os.system'],
    ['STACK_GLOBAL (protocol 4)', Buffer.from('\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R.', 'latin1'), 'builtins.eval'],
    ['INST (protocol 0)', Buffer.from('(I1\nios\nsystem\n.', 'latin1'), 'os.system'],
    ['a torch function outside the allow-list', pickle({ call: { global: ['torch', 'load'] }, args: ['x.pt'] }), 'torch.load'],
    [
      'a storage type that is not one',
      pickle({ persistentId: { tuple: ['storage', { global: ['subprocess', 'Popen'] }, '0', 'cpu', 1] } }),
      'subprocess.Popen',
    ],
  ] as [string, Uint8Array, string][])('refuses %s', (_, bytes, global) => {
    const file = craftCheckpoint('hostile.pt', bytes, [new Uint8Array(4)]);
    expect(() => readTorchCheckpoint(file)).toThrow(new RefusedGlobalError(file, global).message);
  });

  // pickle.dumps of one value by Python 3.11 in protocols 2 to 5 (memo references, frames, sets, big ints, bytes).
  test.each([
    [2, '80027d710058010000006171015d7102284b014740040000000000004e8889580300000068c3a97103635f636f646563730a656e636f64650a7104580300000000c3bf710558060000006c6174696e3171068671075271084b014b0286710929284b014b024b034b0474710a635f5f6275696c74696e5f5f0a7365740a710b5d710c4b036185710d52710e635f5f6275696c74696e5f5f0a66726f7a656e7365740a710f5d71104b05618571115271128a090000000000000000408a090000000000000000c04affffffff4d2c014a701101004a90eefeff8a050000008000680965732e'],
    [3, '80037d710058010000006171015d7102284b014740040000000000004e8889580300000068c3a97103430200ff71044b014b0286710529284b014b024b034b04747106636275696c74696e730a7365740a71075d71084b036185710952710a636275696c74696e730a66726f7a656e7365740a710b5d710c4b056185710d52710e8a090000000000000000408a090000000000000000c04affffffff4d2c014a701101004a90eefeff8a050000008000680565732e'],
    [4, '80049573000000000000007d948c0161945d94284b014740040000000000004e88898c0368c3a994430200ff944b014b02869429284b014b024b034b0474948f94284b0390284b0591948a090000000000000000408a090000000000000000c04affffffff4d2c014a701101004a90eefeff8a050000008000680565732e'],
    [5, '80059573000000000000007d948c0161945d94284b014740040000000000004e88898c0368c3a994430200ff944b014b02869429284b014b024b034b0474948f94284b0390284b0591948a090000000000000000408a090000000000000000c04affffffff4d2c014a701101004a90eefeff8a050000008000680565732e'],
  ])('plain Python values in pickle protocol %i', (_, hex) => {
    const file = craftCheckpoint('plain.pt', Buffer.from(hex, 'hex'));
    const pair = [1, 2];
    const expected: unknown[] = [1, 2.5, null, true, false, 'hé', Uint8Array.from([0, 255]), pair, [], [1, 2, 3, 4], new Set([3]), new Set([5])];
    expected.push(2n ** 70n, -(2n ** 70n), -1, 300, 70000, -70000, 2 ** 31, pair);
    expect(readTorchCheckpoint(file)).toEqual(new Map([['a', expected]]));
  });

  test('self-referencing and deeply nested pickles load without exhausting the stack', () => {
    const cyclic = readTorchCheckpoint(craftCheckpoint('cyclic.pt', Buffer.from('\x80\x02]q\x00h\x00a.', 'latin1'))) as unknown[];
    expect(cyclic[0]).toBe(cyclic);
    const depth = 200_000;
    let nested = readTorchCheckpoint(craftCheckpoint('deep.pt', Buffer.from(`\x80\x02${']'.repeat(depth)}${'a'.repeat(depth - 1)}.`, 'latin1'))) as unknown[];
    let levels = 1;
    for (; nested.length > 0; levels++) nested = nested[0] as unknown[];
    expect(levels).toBe(depth);
  });

  test('views with offsets and strides come back contiguous; parameters unwrap', () => {
    const values = new Float32Array([0, 1, 2, 3, 4, 5]);
    const file = craftCheckpoint(
      'views.pt',
      {
        dict: [
          ['transposed', view('0', 6, 0, [3, 2], [1, 3])],
          ['offset', view('0', 6, 2, [2], [1])],
          ['expanded', view('0', 6, 1, [2, 2], [0, 2])],
          ['parameter', { call: { global: ['torch._utils', '_rebuild_parameter'] }, args: [view('0', 6, 4, [1, 2], [2, 1]), true, hooks] }],
        ],
      },
      [new Uint8Array(values.buffer)],
    );
    const loaded = readTorchCheckpoint(file) as Map<string, TorchTensor>;
    const data = (name: string) => Array.from(loaded.get(name)?.data as Float32Array);
    expect(data('transposed')).toEqual([0, 3, 1, 4, 2, 5]);
    expect(loaded.get('transposed')?.shape).toEqual([3, 2]);
    expect(data('offset')).toEqual([2, 3]);
    expect(data('expanded')).toEqual([1, 3, 1, 3]);
    expect(data('parameter')).toEqual([4, 5]);
  });

  test.each([
    ['a view past its storage', { dict: [['x', view('0', 6, 5, [2], [1])]] }, [new Uint8Array(24)], /lies outside its 6-element storage/],
    ['a storage of the wrong size', { dict: [['x', view('0', 6, 0, [6], [1])]] }, [new Uint8Array(20)], /storage "0" holds 20 bytes, 6 float32 elements need 24/],
    ['a missing storage', { dict: [['x', view('0', 6, 0, [6], [1])]] }, [], /archive has no entry "archive\/data\/0"/],
  ] as [string, PickleValue, Uint8Array[], RegExp][])('a clear error for %s', (_, root, storages, problem) => {
    const file = craftCheckpoint('broken.pt', root, storages);
    expect(() => readTorchCheckpoint(file)).toThrow(WeightFileError);
    expect(() => readTorchCheckpoint(file)).toThrow(problem);
  });

  referenceTest('truncated and foreign files give a clear error naming the file', () => {
    const cut = (source: string, length: number) => {
      const file = path.join(dir, `cut-${length}-${source}`);
      fs.writeFileSync(file, fs.readFileSync(path.join(CHECKPOINTS, source)).subarray(0, length));
      return file;
    };
    const cases: [string, RegExp][] = [
      [cut('raw_state_dict.pt', 500_000), /not a valid zip archive: no end-of-central-directory record/],
      [cut('legacy_format.pt', 2000), /pickle is truncated/],
      [cut('legacy_format.pt', 100_000), /storage "\d+" is missing or truncated/],
      [path.join(CHECKPOINTS, 'README.md'), /not a PyTorch checkpoint|corrupt pickle/],
    ];
    for (const [file, problem] of cases) {
      expect(() => readTorchCheckpoint(file)).toThrow(WeightFileError);
      expect(() => readTorchCheckpoint(file)).toThrow(problem);
      expect(() => readTorchCheckpoint(file)).toThrow(file);
    }
  });

  referenceTest('reads ZIP64 archives (as PyTorch writes beyond 4 GiB)', () => {
    // The raw_state_dict fixture re-laid as ZIP64: sizes and offsets in ZIP64 extra fields, ZIP64 end records.
    const source = path.join(CHECKPOINTS, 'raw_state_dict.pt');
    const entries = withFile(source, (f) => {
      const zip = new ZipReader(f);
      return [...zip.entries.keys()].map((name) => ({ name: Buffer.from(name), data: Buffer.from(zip.read(name)) }));
    });
    const parts: Buffer[] = [];
    let offset = 0;
    const put = (b: Buffer) => {
      parts.push(b);
      offset += b.length;
    };
    const fields = (spec: [string, number | bigint][]) => {
      const sizes: Record<string, number> = { u16: 2, u32: 4, u64: 8 };
      const b = Buffer.alloc(spec.reduce((n, [t]) => n + sizes[t], 0));
      let at = 0;
      for (const [t, v] of spec) {
        if (t === 'u16') b.writeUInt16LE(Number(v), at);
        else if (t === 'u32') b.writeUInt32LE(Number(v), at);
        else b.writeBigUInt64LE(BigInt(v), at);
        at += sizes[t];
      }
      return b;
    };
    const central: Buffer[] = [];
    for (const { name, data } of entries) {
      const crc = zlib.crc32(data);
      const at = offset;
      const local = fields([['u32', 0x04034b50], ['u16', 45], ['u16', 0], ['u16', 0], ['u32', 0], ['u32', crc], ['u32', 0xffffffff], ['u32', 0xffffffff], ['u16', name.length], ['u16', 20]]);
      put(Buffer.concat([local, name, fields([['u16', 1], ['u16', 16], ['u64', data.length], ['u64', data.length]]), data]));
      const extra = fields([['u16', 1], ['u16', 24], ['u64', data.length], ['u64', data.length], ['u64', at]]);
      central.push(
        Buffer.concat([
          fields([['u32', 0x02014b50], ['u16', 45], ['u16', 45], ['u16', 0], ['u16', 0], ['u32', 0], ['u32', crc], ['u32', 0xffffffff], ['u32', 0xffffffff]]),
          fields([['u16', name.length], ['u16', extra.length], ['u16', 0], ['u16', 0], ['u16', 0], ['u32', 0], ['u32', 0xffffffff]]),
          name,
          extra,
        ]),
      );
    }
    const directoryAt = offset;
    put(Buffer.concat(central));
    const end64At = offset;
    const count = entries.length;
    put(fields([['u32', 0x06064b50], ['u64', 44], ['u16', 45], ['u16', 45], ['u32', 0], ['u32', 0], ['u64', count], ['u64', count], ['u64', end64At - directoryAt], ['u64', directoryAt]]));
    put(fields([['u32', 0x07064b50], ['u32', 0], ['u64', end64At], ['u32', 1]]));
    put(fields([['u32', 0x06054b50], ['u16', 0], ['u16', 0], ['u16', 0xffff], ['u16', 0xffff], ['u32', 0xffffffff], ['u32', 0xffffffff], ['u16', 0]]));
    const file = path.join(dir, 'zip64.pt');
    fs.writeFileSync(file, Buffer.concat(parts));
    expectSameTensors(normaliseStateDict(readTorchCheckpoint(file), file).values(), normaliseStateDict(readTorchCheckpoint(source), source).values());
  });

  test('write then read gives identical tensors, wrapped as upstream or bare; data aligned to 64 bytes', () => {
    const file = path.join(dir, 'round-trip.pt');
    writeTorchCheckpoint(file, everyDtype());
    const root = readTorchCheckpoint(file) as Map<string, unknown>;
    expect([...root.keys()]).toEqual(['state_dict']);
    expectSameTensors(normaliseStateDict(root, file).values(), everyDtype());
    withFile(file, (f) => {
      const zip = new ZipReader(f);
      expect([...zip.entries.keys()].slice(0, 2)).toEqual(['archive/data.pkl', 'archive/byteorder']);
      expect(Buffer.from(zip.read('archive/version')).toString()).toBe('3\n');
      for (const name of zip.entries.keys()) if (name.startsWith('archive/data/')) expect(zip.locate(name).offset % 64).toBe(0);
    });
    writeTorchCheckpoint(file, everyDtype(), { wrapper: null });
    expectSameTensors(normaliseStateDict(readTorchCheckpoint(file), file).values(), everyDtype());
  });

});

describe('against PyTorch itself', () => {
  (HAVE_REFERENCE ? withTorch : referenceTest)('the exported .pt loads with torch.load(weights_only=True) as an OrderedDict of the same tensors', () => {
    const file = path.join(dir, 'for-torch.pt');
    const expected: TensorMap = readSafetensors(path.join(CHECKPOINTS, 'expected.safetensors'));
    const tensors: NamedTensor[] = [...expected.values(), ...everyDtype().map((t) => namedTensor(`extra.${t.name}`, t.dtype, t.shape, t.data))];
    writeTorchCheckpoint(file, tensors);
    const script = [
      'import hashlib, json, sys, torch',
      'sd = torch.load(sys.argv[1], map_location="cpu", weights_only=True)["state_dict"]',
      'print(json.dumps({"type": type(sd).__name__, "tensors": [[k, str(v.dtype).replace("torch.", ""), list(v.shape),',
      '  hashlib.sha256(v.reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()] for k, v in sd.items()]}))',
    ].join('\n');
    const loaded = JSON.parse(runPython(script, file)) as { type: string; tensors: [string, string, number[], string][] };
    expect(loaded.type).toBe('OrderedDict');
    expect(loaded.tensors).toEqual(tensors.map((t) => [t.name, t.dtype, [...t.shape], createHash('sha256').update(tensorBytes(t)).digest('hex')]));
  });

  withTorch('checkpoints torch.save writes (views, every dtype, optimizer state; zip, legacy, protocol 4) read back equal', () => {
    const script = [
      'import json, sys, torch',
      'x = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 8',
      'm = torch.nn.Linear(3, 2)',
      'opt = torch.optim.AdamW(m.parameters(), amsgrad=True)',
      'm(torch.ones(1, 3)).sum().backward(); opt.step()',
      'obj = {"transposed": x.t(), "slice": x[1:, 2:], "strided": x[::2, ::3], "half_row": x.half()[1], "bf16": x.bfloat16(),',
      '  "i32": torch.arange(-2, 3, dtype=torch.int32), "i64": torch.arange(3) * 2**40, "mask": x > 1, "u8": torch.arange(3, dtype=torch.uint8),',
      '  "f64": x.double() / 3, "scalar": torch.tensor(3.5), "optimizer": opt.state_dict(),',
      '  "plain": [1, (2.5, None), {"a": True}, -5, 2**70, "h\u00e9llo", b"\\x00\\xff", {3, 4}, torch.Size([2, 3])]}',
      'flat = lambda v: [float(e) if v.is_floating_point() else int(e) for e in v.reshape(-1).tolist()]',
      'tensors = {k: [str(v.dtype).replace("torch.", ""), list(v.shape), flat(v)] for k, v in obj.items() if isinstance(v, torch.Tensor)}',
      'tensors.update({f"exp_avg.{i}": [str(s["exp_avg"].dtype).replace("torch.", ""), list(s["exp_avg"].shape), flat(s["exp_avg"])] for i, s in obj["optimizer"]["state"].items()})',
      'torch.save(obj, sys.argv[1] + "/zip.pt")',
      'torch.save(obj, sys.argv[1] + "/legacy.pt", _use_new_zipfile_serialization=False)',
      'torch.save(obj, sys.argv[1] + "/protocol4.pt", pickle_protocol=4)',
      'print(json.dumps({"tensors": tensors, "lr": obj["optimizer"]["param_groups"][0]["lr"]}))',
    ].join('\n');
    const out = fs.mkdtempSync(path.join(dir, 'from-torch-'));
    const expected = JSON.parse(runPython(script, out)) as { tensors: Record<string, [string, number[], number[]]>; lr: number };
    for (const name of ['zip.pt', 'legacy.pt', 'protocol4.pt']) {
      const root = readTorchCheckpoint(path.join(out, name)) as Map<string, unknown>;
      const state = (root.get('optimizer') as Map<string, Map<number, Map<string, TorchTensor>>>).get('state') as Map<number, Map<string, TorchTensor>>;
      const tensors = new Map([...root].filter(([, v]) => v instanceof TorchTensor) as [string, TorchTensor][]);
      for (const [i, s] of state) tensors.set(`exp_avg.${i}`, s.get('exp_avg') as TorchTensor);
      expect(Object.fromEntries([...tensors].map(([k, t]) => [k, [t.dtype, [...t.shape], numbers(t)]]))).toEqual(expected.tensors);
      const groups = (root.get('optimizer') as Map<string, Map<string, unknown>[]>).get('param_groups') as Map<string, unknown>[];
      expect(groups[0].get('lr')).toBe(expected.lr);
      expect(groups[0].get('betas')).toEqual([0.9, 0.999]);
      expect(root.get('plain')).toEqual([1, [2.5, null], new Map([['a', true]]), -5, 2n ** 70n, 'héllo', Uint8Array.from([0, 255]), new Set([3, 4]), [2, 3]]);
    }
  });
});
