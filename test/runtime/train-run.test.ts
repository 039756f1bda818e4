import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { MetricsLog } from '../../runtime/observe/metrics-log';
import { PARAMETERS_GROUP, listCheckpoints, loadCheckpoint } from '../../io/checkpoint';
import { loadArtifacts } from '../../runtime/session/trainer';
import { readWeightsFile } from '../../io/weights/load-weights';
import { toFloat32 } from '../../io/weights/tensor-map';
import { REFERENCE } from '../helpers/reference';
import { finish, signalWhen, spawnVoco } from '../helpers/cli';

// Real `voco train` processes on the smallest model the options allow (feature size 12, roi 32, one random
// crop per volume), on built-in phantoms, one ORT thread each so that runs are deterministic and comparable.
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-train-'));
const cacheDir = path.join(work, 'cache');
const SMALL = ['--preset', 'tiny', '--roi', '32', '--sw-batch-size', '1', '--threads', '1', '--workers', '1', '--phantom-count', '4', '--cache-dir', cacheDir];

const train = (logdir: string, args: string[]) => spawnVoco(['train', ...SMALL, '--logdir', logdir, ...args]);

const records = (logdir: string, key: string) =>
  new MetricsLog(logdir)
    .read()
    .filter((r) => key in r)
    .map((r) => [Number(r.step), Number(r[key])] as const);
const losses = (logdir: string) => records(logdir, 'loss');

describe('voco train (real processes)', () => {
  const unbroken = path.join(work, 'unbroken');

  beforeAll(async () => {
    const run = await finish(train(unbroken, ['--max-steps', '6', '--checkpoint-every', '2', '--seed', '3']));
    if (run.code !== 0) throw new Error(`unbroken run failed:\n${run.stderr}`);
  });

  test('leaves checkpoints, metrics, TensorBoard events, a loss plot and the exports', () => {
    expect(listCheckpoints(path.join(unbroken, 'checkpoints')).map((c) => c.step)).toEqual([2, 4, 6]);
    expect(losses(unbroken).map(([s]) => s)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(losses(unbroken).every(([, l]) => Number.isFinite(l) && l > 0)).toBe(true);
    // The held-out loss is measured at the start and at the end (every 25 steps by default).
    expect(records(unbroken, 'held_out_loss').map(([s]) => s)).toEqual([0, 6]);
    const files = fs.readdirSync(unbroken);
    expect(files).toEqual(expect.arrayContaining(['encoder.onnx', 'voco_weights.safetensors', 'loss.svg', 'metrics.jsonl']));
    expect(files.some((f) => f.startsWith('events.out.tfevents.'))).toBe(true);
    expect(fs.readFileSync(path.join(unbroken, 'loss.svg'), 'utf8')).toContain('<polyline');
  });

  test('killed with SIGKILL mid-run, --resume reproduces the unbroken run exactly', async () => {
    const broken = path.join(work, 'broken');
    const child = train(broken, ['--max-steps', '6', '--checkpoint-every', '2', '--seed', '3']);
    const metrics = path.join(broken, 'metrics.jsonl');
    await signalWhen(child, () => fs.existsSync(metrics) && losses(broken).length >= 3, 'SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(listCheckpoints(path.join(broken, 'checkpoints')).length).toBeGreaterThan(0);
    const resumed = await finish(train(broken, ['--resume']));
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/resuming from step [24]/);
    expect(losses(broken)).toEqual(losses(unbroken));
    expect(records(broken, 'held_out_loss')).toEqual(records(unbroken, 'held_out_loss'));
  });

  test('the exported encoder.onnx runs in a plain session and gives the training graph\'s features', async () => {
    const session = await ort.InferenceSession.create(path.join(unbroken, 'encoder.onnx'));
    expect(session.inputNames).toEqual(['crops']);
    const voxels = 32 ** 3;
    const crop = new Float32Array(voxels).map((_, i) => Math.sin(i * 0.01) * 0.5 + 0.5);
    const out = await session.run({ crops: new ort.Tensor('float32', crop, [1, 1, 32, 32, 32]) });
    const encoded = out.embedding.data as Float32Array;
    expect(out.embedding.dims).toEqual([1, 24 * 12]);
    await session.release();

    const trainer = await loadArtifacts(path.join(unbroken, 'artifacts'), { threads: 1 });
    const final = loadCheckpoint(listCheckpoints(path.join(unbroken, 'checkpoints')).pop()!.file);
    for (const [name, t] of final.groups.get(PARAMETERS_GROUP)!) trainer.parameters.set(name, t.data as Float32Array);
    const crops = new Float32Array(9 * voxels);
    for (let k = 0; k < 9; k++) crops.set(crop, k * voxels);
    const { extras } = await trainer.computeGradients({
      images: crop,
      crops,
      labels: new Float32Array(9).fill(1 / 9),
      feature_dropout_mask: new Float32Array(10).fill(1),
    });
    const trained = (extras.embeddings.data as Float32Array).subarray(0, 24 * 12);
    // Two separately built float32 graphs of the same backbone: equal up to summation order (relative L2 ~1e-6).
    let diff = 0;
    let norm = 0;
    trained.forEach((v, i) => {
      diff += (v - encoded[i]) ** 2;
      norm += v * v;
    });
    expect(Math.sqrt(diff / norm)).toBeLessThan(1e-5);
    await trainer.release();
  });

  const fp16 = path.join(REFERENCE, 'checkpoints/backbone_fp16.pt');
  (fs.existsSync(fp16) ? test : test.skip)('--init-from a backbone-only .pt: backbone taken from the file, heads fresh, with a warning', async () => {
    const logdir = path.join(work, 'init-from');
    // The warm-up makes step 0's learning rate 0, so the checkpoint after it holds the imported values unchanged.
    const run = await finish(train(logdir, ['--max-steps', '1', '--warmup-steps', '5', '--init-from', fp16]));
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/warning: --init-from .*Missing key\(s\) in state_dict: .*student\./);
    const params = loadCheckpoint(listCheckpoints(path.join(logdir, 'checkpoints')).pop()!.file).groups.get(PARAMETERS_GROUP)!;
    const file = readWeightsFile(fp16);
    const key = 'backbone.swinViT.patch_embed.proj.weight';
    const expected = toFloat32(file.get('swinViT.patch_embed.proj.weight')!).data;
    expect(Array.from(params.get(key)!.data as Float32Array)).toEqual(Array.from(expected));
  });

  test('Ctrl-C (SIGINT) stops after the current step with a checkpoint and a clean exit', async () => {
    const logdir = path.join(work, 'interrupted');
    const child = train(logdir, ['--max-steps', '50', '--checkpoint-every', '100', '--held-out-batches', '0']);
    const done = finish(child);
    await signalWhen(child, () => fs.existsSync(path.join(logdir, 'metrics.jsonl')) && losses(logdir).length >= 2, 'SIGINT');
    const run = await done;
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/stopping after this step/);
    const saved = listCheckpoints(path.join(logdir, 'checkpoints'));
    expect(saved).toHaveLength(1);
    expect(saved[0].step).toBe(losses(logdir).length);
    expect(saved[0].step).toBeLessThan(50);
    expect(fs.existsSync(path.join(logdir, 'encoder.onnx'))).toBe(false);
  });

  test('non-finite steps are skipped and counted, and several in a row stop the run with a clear message', async () => {
    // AdamW moves every weight by about the learning rate: 1e30 overflows the next forward pass.
    const logdir = path.join(work, 'diverged');
    const run = await finish(
      train(logdir, ['--max-steps', '10', '--lr', '1e30', '--lr-schedule', 'constant', '--warmup-steps', '0', '--max-bad-steps', '2', '--held-out-batches', '0']),
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/step 2: loss .* not finite; step skipped \(1 in a row\)/);
    expect(run.stderr).toMatch(/voco: 2 steps in a row had a non-finite loss or gradient .*--resume from the last checkpoint/);
  });

  test('bad options give one clear line and exit code 2', async () => {
    const run = await finish(train(path.join(work, 'bad'), ['--feature-size', '13']));
    expect(run.code).toBe(2);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/feature size must be a multiple of 12/);
  });

  test('a --config JSON file holds the same options', async () => {
    const config = path.join(work, 'run.json');
    fs.writeFileSync(config, JSON.stringify({ 'feature-size': 13, 'max-steps': 3 }));
    const run = await finish(train(path.join(work, 'from-config'), ['--config', config]));
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/feature size must be a multiple of 12.*got 13/);
  });
});
