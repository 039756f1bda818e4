/**
 * `voco import-weights` and `voco export` on the shared reference files: every checkpoint form imports to the
 * reference tensors, exports read back identical (in our readers, in PyTorch, and as a plain ONNX Runtime
 * session), and weights arriving as a `.pt` give the reference model's loss under `voco grad`.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { Rng } from '../../common/rng';
import { buildEncoderGraph } from '../../graph/models/voco/model';
import {
  ENCODER_FILE,
  PT_EXPORT_FILE,
  SAFETENSORS_EXPORT_FILE,
  WeightOptionError,
  convertVocoWeights,
  exportVoco,
  importVocoWeightFile,
  vocoGraphFor,
} from '../../graph/models/voco/weight-files';
import { freshVocoValues, importVocoWeights, importVocoWeightsForTraining, readWeightFile } from '../../graph/models/voco/weights';
import { StateDictMismatchError, WeightFileError } from '../../io/weights/errors';
import { readSafetensors, writeSafetensors } from '../../io/weights/safetensors';
import { normaliseKey, normaliseStateDict } from '../../io/weights/state-dict';
import { NamedTensor, TensorMap, namedTensor, tensorBytes, toFloat32 } from '../../io/weights/tensor-map';
import { writeTorchCheckpoint } from '../../io/weights/torch-writer';
import { cpuSession, runSession } from '../helpers/ort';
import { runVoco } from '../helpers/cli';
import { REFERENCE, python, runPython, withTorch } from './weights-helpers';

const CHECKPOINTS = path.join(REFERENCE, 'checkpoints');
const MODEL = path.join(REFERENCE, 'model/tiny12_r64_b1');
const WEIGHTS = path.join(MODEL, 'weights.safetensors');
const haveReference = fs.existsSync(CHECKPOINTS) && fs.existsSync(WEIGHTS);
if (!haveReference) console.log(`skipped weights-cli tests: no reference files at ${REFERENCE}`);
const describeReference = haveReference ? describe : describe.skip;

const voco = (...args: string[]) => runVoco(args);

const hex = (t: NamedTensor) => createHash('sha256').update(tensorBytes(t)).digest('hex');
/** name, dtype, shape and a digest of the bytes of each tensor, in order. */
const digest = (ts: Iterable<NamedTensor>) => [...ts].map((t) => [t.name, t.dtype, [...t.shape], hex(t)]);
const sameValues = (a: ReadonlyMap<string, Float32Array>, b: ReadonlyMap<string, Float32Array>) =>
  expect([...a].map(([n, v]) => [n, Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')])).toEqual(
    [...b].map(([n, v]) => [n, Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')]),
  );

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'weights-cli-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describeReference('voco import-weights', () => {
  const expected = haveReference ? readSafetensors(path.join(CHECKPOINTS, 'expected.safetensors')) : new Map();

  test('every reference checkpoint imports to exactly the expected tensors', () => {
    for (const name of ['ddp_training.pt', 'raw_state_dict.pt', 'legacy_format.pt', 'backbone_fp16.pt']) {
      const file = path.join(CHECKPOINTS, name);
      const imported = importVocoWeightFile(file, { preset: 'tiny' });
      const floats = [...expected.values()].filter((t) => t.dtype === 'float32' && (name !== 'backbone_fp16.pt' || t.name.startsWith('backbone.')));
      const got = floats.map((t) => namedTensor(t.name, 'float32', t.shape, imported.values.get(t.name)!));
      if (name === 'backbone_fp16.pt') {
        // The reference rounded to float16: exactly the file's own values widened, within half precision of the reference.
        const own = readWeightFile(file);
        expect(digest(got)).toEqual(digest(floats.map((t) => ({ ...toFloat32(own.get(normaliseKey(t.name))!), name: t.name }))));
        for (const [i, t] of floats.entries()) {
          expect((t.data as Float32Array).every((v, j) => Math.abs(v - (got[i].data as Float32Array)[j]) <= 2 ** -11 * Math.abs(v) + 2 ** -25)).toBe(true);
        }
      } else {
        expect(digest(got)).toEqual(digest(floats));
      }
      // The int64 relative-position index is there and equal to the model's own (importing checks it).
      const index = [...expected.keys()].filter((k) => k.endsWith('relative_position_index'));
      expect(index.length).toBe(1);
      expect(imported.missing).not.toContain(index[0]);
      expect(imported.values.size).toBe(name === 'backbone_fp16.pt' ? 23 : 25);
    }
  });

  test('CLI: a backbone-only float16 `net` dict is reported as PyTorch would; --strict refuses it and writes nothing', () => {
    const file = path.join(CHECKPOINTS, 'backbone_fp16.pt');
    const out = path.join(tmp, 'fp16.ckpt');
    const run = voco('import-weights', file, '--out', out);
    expect(run.stderr).toContain('warning: Error(s) in loading state_dict: Missing key(s) in state_dict: "backbone.swinViT.layers1.0.blocks.1.norm1.weight"');
    for (const head of ['student.', 'teacher.']) expect(run.stderr).toContain(`"${head}`);
    expect(run.stderr).not.toContain('Unexpected key(s)');
    expect(run.stdout).toContain(`read ${file}: 24 tensors, feature size 12 (preset tiny)`);
    expect(run.stdout).toMatch(/matched 23 of 149 parameter and state tensors; 126 freshly initialised \(seed 0\)/);
    expect(run.status).toBe(0);
    // The checkpoint is what `voco grad --weights` and `voco train --init-from` read: the file's values, widened,
    // and fresh values from seed 0 for the rest.
    const vg = vocoGraphFor(12);
    const values = importVocoWeights(out, vg);
    const own = readWeightFile(file);
    const fresh = freshVocoValues(vg, 0);
    const fromFile = (name: string) => own.has(normaliseKey(name));
    const bytes = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    const differing = vg.graph.parameters.filter((p) => {
      const name = p.tensor.name;
      const want = fromFile(name) ? (toFloat32(own.get(normaliseKey(name))!).data as Float32Array) : fresh.get(name)!;
      return !bytes(values.get(name)!).equals(bytes(want));
    });
    expect(differing.map((p) => p.tensor.name)).toEqual([]);
    expect(vg.graph.parameters.filter((p) => fromFile(p.tensor.name)).length).toBe(23);

    const strictOut = path.join(tmp, 'strict.ckpt');
    const strict = voco('import-weights', file, '--strict', '--out', strictOut);
    expect(strict.status).toBe(2);
    expect(strict.stderr).toMatch(new RegExp(`^voco: ${file}: Error\\(s\\) in loading state_dict: Missing key\\(s\\) in state_dict: "`));
    expect(fs.existsSync(strictOut)).toBe(false);
  });

  test('CLI: malicious.pt is refused, exit 2, nothing written', () => {
    const out = path.join(tmp, 'malicious.ckpt');
    const run = voco('import-weights', path.join(CHECKPOINTS, 'malicious.pt'), '--out', out);
    expect(run.status).toBe(2);
    expect(run.stderr).toBe(`voco: ${path.join(CHECKPOINTS, 'malicious.pt')}: refused to load global "posix.system" (only tensors, storages and plain containers are allowed)\n`);
    expect(fs.existsSync(out)).toBe(false);
  });

  test('a preset the file does not fit, or an output format we do not write, is a clear error and writes nothing', () => {
    const file = path.join(CHECKPOINTS, 'raw_state_dict.pt');
    const out = path.join(tmp, 'b.ckpt');
    expect(() => convertVocoWeights(file, out, { preset: 'B' })).toThrow(
      new WeightOptionError(`${file}: holds feature size 12 (preset tiny) weights, but feature size 48 (preset B) was asked for`),
    );
    expect(() => convertVocoWeights(file, path.join(tmp, 'x.npz'))).toThrow(WeightOptionError);
    expect(fs.existsSync(out) || fs.existsSync(path.join(tmp, 'x.npz'))).toBe(false);
  });

  test('for training: heads too when present, backbone-only files leave the heads fresh; mis-shaped or foreign files are refused', () => {
    const vg = vocoGraphFor(12);
    const full = importVocoWeightsForTraining(WEIGHTS, vg);
    expect(full.report).toBe('');
    expect(full.fresh).toEqual([]);
    expect(full.values.size).toBe(vg.graph.parameters.length);
    const backbone = importVocoWeightsForTraining(path.join(CHECKPOINTS, 'backbone_fp16.pt'), vg);
    expect(backbone.values.has('backbone.swinViT.patch_embed.proj.weight')).toBe(true);
    expect(backbone.fresh.filter((n) => n.startsWith('student.') || n.startsWith('teacher.')).length).toBeGreaterThan(0);
    expect(backbone.report).toMatch(/^Error\(s\) in loading state_dict: Missing key\(s\) in state_dict: /);
    expect(() => importVocoWeightsForTraining(path.join(CHECKPOINTS, 'backbone_fp16.pt'), vg, { strict: true })).toThrow(StateDictMismatchError);

    const tensors: TensorMap = readSafetensors(path.join(CHECKPOINTS, 'expected.safetensors'));
    const key = 'backbone.swinViT.patch_embed.proj.bias';
    tensors.set(key, namedTensor(key, 'float32', [13], new Float32Array(13)));
    const misShaped = path.join(tmp, 'mis-shaped.safetensors');
    writeSafetensors(misShaped, tensors.values());
    expect(() => importVocoWeightsForTraining(misShaped, vg)).toThrow(
      new StateDictMismatchError(
        `${misShaped}: Error(s) in loading state_dict: size mismatch for ${key}: copying a param with shape [13] from checkpoint, the shape in current model is [12].`,
      ),
    );
    const foreign = path.join(tmp, 'foreign.safetensors');
    writeSafetensors(foreign, [namedTensor('fc.weight', 'float32', [2], new Float32Array(2))]);
    expect(() => importVocoWeightsForTraining(foreign, vg)).toThrow(WeightFileError);
  });
});

describeReference('voco export', () => {
  let dir: string;
  let original: TensorMap;
  let run: ReturnType<typeof voco>;
  beforeAll(() => {
    dir = path.join(tmp, 'export');
    original = readSafetensors(WEIGHTS);
    run = voco('export', WEIGHTS, '--out', dir, '--roi', '32');
  }, 60_000);

  test('CLI: writes the encoder, safetensors and .pt; both state-dict files import back to identical tensors', () => {
    expect(run.stderr.split('\n').filter((l) => l && !l.startsWith('npm warn'))).toEqual([]);
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(
      [`read ${WEIGHTS}: feature size 12 (preset tiny)`, ...[ENCODER_FILE, SAFETENSORS_EXPORT_FILE, PT_EXPORT_FILE].map((f) => `wrote ${path.join(dir, f)}`), ''].join('\n'),
    );
    // Upstream names, upstream order, buffers included: the reference file byte for byte.
    expect(digest(readSafetensors(path.join(dir, SAFETENSORS_EXPORT_FILE)).values())).toEqual(digest(original.values()));
    expect(digest(readWeightFile(path.join(dir, PT_EXPORT_FILE)).values())).toEqual(digest(normaliseStateDict(original, WEIGHTS).values()));
    const vg = vocoGraphFor(12);
    const values = importVocoWeights(WEIGHTS, vg, original);
    sameValues(importVocoWeights(path.join(dir, PT_EXPORT_FILE), vg), values);
    sameValues(importVocoWeights(path.join(dir, SAFETENSORS_EXPORT_FILE), vg), values);
  });

  test('the exported encoder.onnx runs alone and equals the encoder graph fed the same weights as parameters', async () => {
    const session = await ort.InferenceSession.create(path.join(dir, ENCODER_FILE));
    expect(session.inputNames).toEqual(['crops']);
    const crops = new Float32Array(32 ** 3);
    const rng = new Rng(5);
    for (let i = 0; i < crops.length; i++) crops[i] = rng.normal();
    const exported = await session.run({ crops: new ort.Tensor('float32', crops, [1, 1, 32, 32, 32]) });
    await session.release();

    const encoder = buildEncoderGraph({ featureSize: 12, roi: 32 }, 1);
    const params = encoder.graph.parameters.map((p) => p.tensor);
    const values = importVocoWeights(WEIGHTS, vocoGraphFor(12), original);
    const reference = await cpuSession({ name: 'encoder', inputs: [...params, encoder.crops], outputs: Object.entries(encoder.outputs).map(([name, tensor]) => ({ name, tensor })) });
    const expectedOut = await runSession(reference, new Map([...params.map((p) => [p, values.get(p.name)!] as const), [encoder.crops, crops]]));
    await reference.release();
    expect(Object.keys(exported).sort()).toEqual(['embedding', 'hidden0', 'hidden1', 'hidden2', 'hidden3', 'hidden4']);
    for (const [name, want] of Object.entries(expectedOut)) {
      const got = exported[name].data as Float32Array;
      expect(got.length).toBe(want.length);
      // Float32 Conv kernels differ between constant (pre-packed) and fed weights: compare against the output's scale.
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < got.length; i++) {
        worst = Math.max(worst, Math.abs(got[i] - want[i]));
        scale = Math.max(scale, Math.abs(want[i]));
      }
      expect({ name, worstOverScale: worst / scale < 1e-5 }).toEqual({ name, worstOverScale: true });
    }
  }, 60_000);

  test('a file lacking weights a format needs is refused before anything is written', () => {
    const out = path.join(tmp, 'partial-export');
    expect(() => exportVoco(path.join(CHECKPOINTS, 'backbone_fp16.pt'), out, { formats: ['onnx'], roi: 32 })).toThrow(/lacks \d+ key\(s\) of the encoder/);
    expect(() => exportVoco(path.join(CHECKPOINTS, 'backbone_fp16.pt'), out, { formats: ['pt'] })).toThrow(/lacks \d+ key\(s\) of the full state dict/);
    expect(fs.existsSync(out)).toBe(false);
  });

  withTorch('torch.load reads the exported .pt as {"state_dict": OrderedDict} with every tensor of the reference', () => {
    const script = [
      'import hashlib, json, sys, torch',
      'root = torch.load(sys.argv[1], map_location="cpu")',
      'sd = root["state_dict"]',
      'print(json.dumps({"keys": list(root.keys()), "type": type(sd).__name__, "tensors": [[k, str(v.dtype).replace("torch.", ""), list(v.shape),',
      '  hashlib.sha256(v.reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()] for k, v in sd.items()]}))',
    ].join('\n');
    const loaded = JSON.parse(runPython(script, path.join(dir, PT_EXPORT_FILE))) as { keys: string[]; type: string; tensors: unknown[] };
    expect(loaded.keys).toEqual(['state_dict']);
    expect(loaded.type).toBe('OrderedDict');
    expect(loaded.tensors).toEqual(digest(original.values()));
  });
});

describeReference('the bar: reference weights from a .pt give the reference loss under voco grad', () => {
  test('import-weights FILE.pt --strict, then grad on the fixture inputs', () => {
    const ours = path.join(tmp, 'reference-ours.pt');
    writeTorchCheckpoint(ours, readSafetensors(WEIGHTS).values());
    let source = ours;
    if (python) {
      // What users bring: a torch.save'd DistributedDataParallel checkpoint.
      source = path.join(tmp, 'reference-torch.pt');
      runPython(
        [
          'import collections, sys, torch',
          'sd = torch.load(sys.argv[1], map_location="cpu")["state_dict"]',
          'torch.save({"epoch": 3, "state_dict": collections.OrderedDict(("module." + k, v) for k, v in sd.items())}, sys.argv[2])',
        ].join('\n'),
        ours,
        source,
      );
    } else console.log('the bar uses our own .pt writer: no Python with torch to torch.save it');
    const ckpt = path.join(tmp, 'reference.ckpt');
    const imported = voco('import-weights', source, '--strict', '--out', ckpt);
    expect(imported.stdout).toContain('matched 149 of 149 parameter and state tensors\n');
    expect(imported.status).toBe(0);
    const out = path.join(tmp, 'grad.safetensors');
    const grad = voco('grad', '--weights', ckpt, '--batch', path.join(MODEL, 'inputs.safetensors'), '--out', out, '--crops-per-run', '2', '--threads', '2');
    expect(grad.stderr.split('\n').filter((l) => l && !l.startsWith('npm warn'))).toEqual([]);
    expect(grad.status).toBe(0);
    const loss = (readSafetensors(out).get('loss')!.data as Float32Array)[0];
    const want = (JSON.parse(fs.readFileSync(path.join(MODEL, 'case.json'), 'utf8')) as { loss: { total: number } }).loss.total;
    expect(Math.abs(loss - want) / Math.abs(want)).toBeLessThan(1e-5);
  }, 480_000);
});
