import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildVocoGraph } from '../../graph/models/voco/model';
import { resolveVocoOptions } from '../../graph/models/voco/options';
import { ENCODER_FILE, SAFETENSORS_EXPORT_FILE, writeVocoEncoder, writeVocoWeights } from '../../graph/models/voco/weight-files';
import { BufferMismatchError, exportVocoStateDict, freshVocoValues } from '../../graph/models/voco/weights';
import { resolveSwinUnetrOptions } from '../../graph/models/swinunetr/options';
import {
  SwinUnetrWeightError,
  describeModules,
  importSwinUnetrWeights,
  inferSwinUnetrOptions,
  isSwinUnetrStateDict,
  readWeightSource,
  swinUnetrStateDict,
  writeSwinUnetrWeights,
} from '../../graph/models/swinunetr/weights';
import { PARAMETERS_GROUP, checkpointDir, loadCheckpoint, saveCheckpoint } from '../../io/checkpoint';
import { StateDictMismatchError } from '../../io/weights/errors';
import { readSafetensors, writeSafetensors } from '../../io/weights/safetensors';
import { NamedTensor, TensorMap, namedTensor } from '../../io/weights/tensor-map';
import { readTorchCheckpoint } from '../../io/weights/torch-reader';
import { writeTorchCheckpoint } from '../../io/weights/torch-writer';
import { REFERENCE, referenceDescribe } from '../helpers/reference';

/**
 * SwinUNETR weights from every source users bring (MONAI state dicts, our VoCo checkpoints and logdirs, encoder.onnx,
 * upstream VoCo `.pt`), what the report says of each, and MONAI state dicts written back.
 */
const SEGMENTATION = path.join(REFERENCE, 'segmentation');
const MONAI_WEIGHTS = path.join(SEGMENTATION, 'tiny12_r64_b2_c4/weights.safetensors');
const TINY = { featureSize: 12, inChannels: 1, outChannels: 4 };
const DECODER_AND_OUT = 22;
const BACKBONE_PARAMETERS = 137;

let tmp: string;
beforeAll(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinunetr-weights-'))));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const sameArray = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

let voco: { vg: ReturnType<typeof buildVocoGraph>; values: Map<string, Float32Array> } | undefined;

/** VoCo tiny with fresh values (seed 5), as pre-training holds them, by graph name. */
function vocoValues() {
  if (!voco) {
    const vg = buildVocoGraph(resolveVocoOptions({ featureSize: 12, featureDropout: 0 }), 'train');
    voco = { vg, values: freshVocoValues(vg, 5) };
  }
  return voco;
}

/** The backbone values of VoCo under MONAI's SwinUNETR names. */
const backboneOf = (values: Map<string, Float32Array>) =>
  new Map([...values].filter(([n]) => n.startsWith('backbone.')).map(([n, v]) => [n.slice('backbone.'.length), v]));

function expectBackboneLoaded(file: string, source = file) {
  const { values } = vocoValues();
  const backbone = backboneOf(values);
  const o = resolveSwinUnetrOptions({ ...TINY, outChannels: 3 });
  const { values: loaded, report } = importSwinUnetrWeights(source, o, { seed: 1 });
  expect(report.file).toBe(file);
  expect(report.loaded).toHaveLength(BACKBONE_PARAMETERS);
  expect(report.fresh).toHaveLength(DECODER_AND_OUT);
  expect(report.fresh.every((n) => /^(decoder[1-5]|out)\./.test(n))).toBe(true);
  expect(report.skipped).toEqual([]);
  for (const name of report.loaded) expect(sameArray(loaded.get(name)!, backbone.get(name)!)).toBe(true);
  expect(report.summary).toContain(`${file}: loaded ${BACKBONE_PARAMETERS} of 159 parameters; decoder5..1, out: 22 tensors fresh (not in the file; seed 1)`);
  // Fresh values are the model's own initialisation, drawn from the seed.
  const again = importSwinUnetrWeights(source, o, { seed: 1 }).values;
  expect(report.fresh.every((n) => sameArray(again.get(n)!, loaded.get(n)!))).toBe(true);
  return report;
}

describe('VoCo sources into SwinUNETR: the backbone loaded, decoder5..1 and out fresh, the heads reported unused', () => {
  test('a VoCo training checkpoint (.ckpt, graph names, no buffers)', () => {
    const { vg, values } = vocoValues();
    const file = path.join(tmp, 'voco.ckpt');
    writeVocoWeights(file, vg, values);
    const report = expectBackboneLoaded(file);
    expect(report.kind).toBe('checkpoint');
    expect(report.unexpected.every((k) => /^(student|teacher)\./.test(k)) && report.unexpected.length > 0).toBe(true);
    expect(report.summary).toContain(`${report.unexpected.length} file keys ignored (VoCo heads not used)`);
    expect(report.summary).toContain('relative_position_index not in the file (computed)');
    expect(report.buffersChecked).toBe(0);
  });

  test("a pre-training logdir: its newest checkpoint, else its voco_weights.safetensors, else its encoder.onnx", () => {
    const { vg, values } = vocoValues();
    const logdir = path.join(tmp, 'logdir');
    const parameters: TensorMap = new Map(vg.graph.parameters.map((p) => [p.tensor.name, namedTensor(p.tensor.name, 'float32', p.tensor.shape, values.get(p.tensor.name)!)]));
    const older: TensorMap = new Map([...parameters].map(([n, t]) => [n, namedTensor(n, 'float32', t.shape, new Float32Array(t.data.length))]));
    saveCheckpoint(checkpointDir(logdir), { step: 2, groups: new Map([[PARAMETERS_GROUP, older]]), meta: {} }, 5);
    const newest = saveCheckpoint(checkpointDir(logdir), { step: 7, groups: new Map([[PARAMETERS_GROUP, parameters]]), meta: {} }, 5);
    expectBackboneLoaded(newest, logdir);

    const exported = path.join(tmp, 'exported-logdir');
    fs.mkdirSync(exported);
    writeSafetensors(path.join(exported, SAFETENSORS_EXPORT_FILE), exportVocoStateDict(vg, values));
    const report = expectBackboneLoaded(path.join(exported, SAFETENSORS_EXPORT_FILE), exported);
    expect(report.buffersChecked).toBe(8);

    const empty = path.join(tmp, 'empty-logdir');
    fs.mkdirSync(empty);
    expect(() => readWeightSource(empty)).toThrow(`${empty}: is a folder without weights: no checkpoint in checkpoints/, no ${SAFETENSORS_EXPORT_FILE}, no ${ENCODER_FILE}`);
  });

  test('encoder.onnx: its initialisers (graph constants are not state-dict keys)', () => {
    const { values } = vocoValues();
    const file = path.join(tmp, ENCODER_FILE);
    writeVocoEncoder(file, 12, values, { roi: 32 });
    const report = expectBackboneLoaded(file);
    expect(report.kind).toBe('onnx');
    expect(report.unexpected).toEqual([]);
  });

  test('upstream VoCo_*_SSL_head.pt form: backbone.swinViT... keys only, bare and under module.', () => {
    const { vg, values } = vocoValues();
    const backbone = exportVocoStateDict(vg, values).filter((t) => t.name.startsWith('backbone.'));
    const bare = path.join(tmp, 'VoCo_tiny_SSL_head.pt');
    writeTorchCheckpoint(bare, backbone, { wrapper: null });
    const report = expectBackboneLoaded(bare);
    expect([report.kind, report.buffersChecked, report.unexpected]).toEqual(['torch', 8, []]);
    expect(report.summary).toContain('8 relative_position_index buffers checked');
    const ddp = path.join(tmp, 'ddp_ssl.pt');
    writeTorchCheckpoint(ddp, backbone.map((t) => ({ ...t, name: `module.${t.name.replace('swinViT', 'swin_vit')}` })), { wrapper: 'net' });
    expectBackboneLoaded(ddp);
  });
});

referenceDescribe('MONAI SwinUNETR state dicts (../shared/reference/segmentation)', () => {
  let monai: TensorMap;
  beforeAll(() => (monai = readSafetensors(MONAI_WEIGHTS)));

  test('the model inferred from the file: feature size and input channels from patch_embed, classes from out', () => {
    expect(inferSwinUnetrOptions(monai, MONAI_WEIGHTS)).toEqual(TINY);
    expect(isSwinUnetrStateDict(monai)).toBe(true);
    const { values } = vocoValues();
    expect(isSwinUnetrStateDict(new Map([...values].map(([n, v]) => [n, namedTensor(n, 'float32', [v.length], v)])))).toBe(false);
    expect(() => inferSwinUnetrOptions(new Map(), 'x.pt')).toThrow(SwinUnetrWeightError);
  });

  test('all 159 parameters load, the 8 relative_position_index buffers checked, nothing else said', () => {
    const { values, report } = importSwinUnetrWeights(MONAI_WEIGHTS, resolveSwinUnetrOptions(TINY), { seed: 0, strict: true });
    expect([report.loaded.length, report.fresh, report.skipped, report.unexpected, report.buffersChecked, report.pytorch]).toEqual([159, [], [], [], 8, '']);
    expect(report.summary).toBe(`${MONAI_WEIGHTS}: loaded 159 of 159 parameters; 8 relative_position_index buffers checked`);
    for (const [name, t] of monai) if (t.dtype === 'float32') expect(sameArray(values.get(name)!, t.data as Float32Array)).toBe(true);
  });

  test('4-channel MRI: the patch embedding and encoder1 conv1/conv3 start fresh, each said with its shapes', () => {
    const o = resolveSwinUnetrOptions({ ...TINY, inChannels: 4 });
    const { values, report } = importSwinUnetrWeights(MONAI_WEIGHTS, o, { seed: 0 });
    expect(report.skipped.map((s) => s.name)).toEqual(['swinViT.patch_embed.proj.weight', 'encoder1.layer.conv1.conv.weight', 'encoder1.layer.conv3.conv.weight']);
    expect(report.summary).toContain(
      'swinViT.patch_embed.proj.weight [12,1,2,2,2] in the file vs [12,4,2,2,2] in the model (input channels 1 in the file, 4 in the model) -> fresh',
    );
    expect(report.loaded).toHaveLength(156);
    expect(values.get('swinViT.patch_embed.proj.weight')).toHaveLength(12 * 4 * 8);
    expect(() => importSwinUnetrWeights(MONAI_WEIGHTS, o, { seed: 0, strict: true })).toThrow(
      /size mismatch for swinViT\.patch_embed\.proj\.weight: copying a param with shape \[12, 1, 2, 2, 2\] from checkpoint, the shape in current model is \[12, 4, 2, 2, 2\]/,
    );
  });

  test('another class count: out.conv.conv.* fresh; another feature size or no model key is refused', () => {
    const { report } = importSwinUnetrWeights(MONAI_WEIGHTS, resolveSwinUnetrOptions({ ...TINY, outChannels: 3 }), { seed: 0 });
    expect(report.skipped.map((s) => [s.name, s.reason])).toEqual([
      ['out.conv.conv.weight', 'classes 4 in the file, 3 in the model'],
      ['out.conv.conv.bias', 'classes 4 in the file, 3 in the model'],
    ]);
    expect(() => importSwinUnetrWeights(MONAI_WEIGHTS, resolveSwinUnetrOptions({ ...TINY, featureSize: 24 }), { seed: 0 })).toThrow(
      `${MONAI_WEIGHTS}: holds feature size 12 weights, the model has feature size 24`,
    );
    const stray = path.join(tmp, 'stray.safetensors');
    writeSafetensors(stray, [namedTensor('conv.weight', 'float32', [1], Float32Array.of(1))]);
    expect(() => importSwinUnetrWeights(stray, resolveSwinUnetrOptions(TINY), { seed: 0 })).toThrow(`${stray}: none of its 1 keys (conv.weight) is a key of the SwinUNETR state dict`);
  });

  test('a relative_position_index that is not the 7^3 one is refused; a fine-tuned .pt under module./state_dict with metadata loads', () => {
    const key = 'swinViT.layers1.0.blocks.0.attn.relative_position_index';
    const tensors = [...monai.values()];
    const bad = path.join(tmp, 'bad-index.safetensors');
    writeSafetensors(bad, tensors.map((t) => (t.name === key ? namedTensor(key, 'int64', t.shape, new BigInt64Array(t.data.length)) : t)));
    expect(() => importSwinUnetrWeights(bad, resolveSwinUnetrOptions(TINY), { seed: 0 })).toThrow(BufferMismatchError);
    const ddp = path.join(tmp, 'finetuned.pt');
    writeTorchCheckpoint(ddp, tensors.map((t) => ({ ...t, name: `module.${t.name}` })));
    expect(importSwinUnetrWeights(ddp, resolveSwinUnetrOptions(TINY), { seed: 0, strict: true }).report.loaded).toHaveLength(159);
  });

  test('written as .pt, .safetensors and .ckpt: MONAI order and shapes, read back to the same values', () => {
    const { values } = importSwinUnetrWeights(MONAI_WEIGHTS, resolveSwinUnetrOptions(TINY), { seed: 0 });
    const shapes = JSON.parse(fs.readFileSync(path.join(SEGMENTATION, 'swinunetr_state_dict_shapes.json'), 'utf8'));
    const listed = shapes.presets.tiny.state_dict as Record<string, { shape: number[]; dtype: string }>;
    // The listed preset has MONAI's default 14 classes.
    const asMonai14 = swinUnetrStateDict({ ...TINY, outChannels: 14 }, importSwinUnetrWeights(MONAI_WEIGHTS, resolveSwinUnetrOptions({ ...TINY, outChannels: 14 }), { seed: 0 }).values);
    expect(asMonai14.map((t) => [t.name, t.shape, t.dtype])).toEqual(Object.entries(listed).map(([k, v]) => [k, v.shape, v.dtype]));
    for (const ext of ['pt', 'safetensors', 'ckpt']) {
      const file = path.join(tmp, `written.${ext}`);
      writeSwinUnetrWeights(file, TINY, values, { note: 'test' });
      const back = importSwinUnetrWeights(file, resolveSwinUnetrOptions(TINY), { seed: 9, strict: true });
      expect(back.report.loaded).toHaveLength(159);
      for (const [name, v] of values) expect(sameArray(back.values.get(name)!, v)).toBe(true);
    }
    const pt = readTorchCheckpoint(path.join(tmp, 'written.pt')) as Map<string, Map<string, NamedTensor>>;
    const stateDict = pt.get('state_dict')!;
    expect([...stateDict.keys()]).toEqual([...monai.keys()]);
    expect([...stateDict.values()].filter((t) => t.dtype === 'int64')).toHaveLength(8);
    const ckpt = loadCheckpoint<{ model: string; options: object; note: string }>(path.join(tmp, 'written.ckpt'));
    expect(ckpt.meta).toEqual({ model: 'swinunetr', options: TINY, note: 'test' });
    expect(ckpt.groups.get(PARAMETERS_GROUP)!.size).toBe(159);
  });

  const MONAI_SRC = process.env.MONAI_SRC;
  const PYTHON = '/usr/bin/python3';
  const haveTorch = fs.existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
  const why = !MONAI_SRC ? 'MONAI_SRC (a MONAI 1.3.2 source folder) is not set' : !haveTorch ? `${PYTHON} has no torch` : '';
  (why ? test.skip : test)(
    `MONAI's SwinUNETR(use_v2=True).load_state_dict(strict=True) takes the written .pt; its own fine-tuning checkpoint (numpy best_acc) loads back${why ? ` — skipped: ${why}` : ''}`,
    () => {
      const { values } = importSwinUnetrWeights(MONAI_WEIGHTS, resolveSwinUnetrOptions(TINY), { seed: 0 });
      const ours = path.join(tmp, 'monai-check.pt');
      writeSwinUnetrWeights(ours, TINY, values);
      const theirs = path.join(tmp, 'monai-finetuned.pt');
      const script = [
        'import sys, torch, numpy as np',
        'from monai.networks.nets import SwinUNETR',
        'm = SwinUNETR(img_size=(64, 64, 64), in_channels=1, out_channels=4, feature_size=12, use_v2=True)',
        'sd = torch.load(sys.argv[1])["state_dict"]',
        'print(m.load_state_dict(sd, strict=True))',
        'assert all(torch.equal(v, sd[k]) for k, v in m.state_dict().items())',
        'torch.save({"epoch": 3, "best_acc": np.float64(0.81), "state_dict": m.state_dict()}, sys.argv[2])',
      ].join('\n');
      const stubs = path.resolve(__dirname, '../../bench/torch');
      const run = spawnSync(PYTHON, ['-c', script, ours, theirs], { encoding: 'utf8', env: { ...process.env, PYTHONPATH: `${MONAI_SRC}:${stubs}` } });
      expect(run.stderr.split('\n').filter((l) => /Error|Traceback/.test(l))).toEqual([]);
      expect(run.stdout.trim()).toBe('<All keys matched successfully>');
      const back = importSwinUnetrWeights(theirs, resolveSwinUnetrOptions(TINY), { seed: 0, strict: true });
      expect(back.report.loaded).toHaveLength(159);
      for (const [name, v] of values) expect(sameArray(back.values.get(name)!, v)).toBe(true);
    },
    300_000,
  );
});

test('fresh modules are named compactly', () => {
  expect(describeModules(['decoder5.a', 'decoder5.b', 'decoder4.a', 'decoder3.a', 'decoder2.a', 'decoder1.a', 'out.b'])).toBe('decoder5..1, out');
  expect(describeModules(['encoder1.a', 'encoder2.a', 'encoder10.a', 'swinViT.x'])).toBe('encoder1..2, encoder10, swinViT');
});

test('a file matching nothing strictly is a StateDictMismatchError naming what is missing', () => {
  const { vg, values } = vocoValues();
  const file = path.join(tmp, 'voco-strict.ckpt');
  writeVocoWeights(file, vg, values);
  expect(() => importSwinUnetrWeights(file, resolveSwinUnetrOptions(TINY), { seed: 0, strict: true })).toThrow(StateDictMismatchError);
});
