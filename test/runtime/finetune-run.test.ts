import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PARAMETERS_GROUP, OPTIMIZER_GROUP, listCheckpoints, loadCheckpoint } from '../../io/checkpoint';
import { readSegmenterFacts } from '../../graph/models/swinunetr/segmenter-file';
import { writePhantomDataset } from '../../data/phantom/dataset';
import { MetricsLog } from '../../runtime/observe/metrics-log';
import type { RunState } from '../../runtime/loop/run-state';
import { loadArtifacts } from '../../runtime/session/trainer';
import { finish, signalWhen, spawnVoco } from '../helpers/cli';

// Real `voco finetune` processes on the smallest model (feature size 12, roi 32, one crop per step) and three
// small labelled phantoms (two to train on, one to validate), one ORT thread each so that runs are comparable.
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-finetune-'));
const cacheDir = path.join(work, 'cache');
const datalist = writePhantomDataset(path.join(work, 'phantoms'), {
  count: 3,
  validation: 1,
  seed: 5,
  phantom: { geometry: { inPlaneSize: [40, 48], slices: [16, 20] } },
});
const SMALL = ['--data', datalist, '--preset', 'tiny', '--roi', '32', '--crops', '1', '--threads', '1', '--workers', '1', '--cache-dir', cacheDir, '--sw-batch-size', '2'];
const run = (logdir: string, args: string[], data = SMALL) => spawnVoco(['finetune', ...data, '--logdir', logdir, ...args]);

const records = (logdir: string, key: string) =>
  new MetricsLog(logdir)
    .read()
    .filter((r) => key in r)
    .map((r) => [Number(r.step), Number(r[key])] as const);
const lastParameters = (logdir: string) => loadCheckpoint(listCheckpoints(path.join(logdir, 'checkpoints')).pop()!.file).groups.get(PARAMETERS_GROUP)!;
const bytes = (a: { data: ArrayBufferView }) => Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('voco finetune (real processes)', () => {
  const unbroken = path.join(work, 'unbroken');
  const ARGS = ['--max-steps', '4', '--val-every', '2', '--checkpoint-every', '2', '--seed', '3'];

  beforeAll(async () => {
    const done = await finish(run(unbroken, ARGS));
    if (done.code !== 0) throw new Error(`unbroken run failed:\n${done.stderr}`);
    expect(done.stderr.split('\n')[0]).toMatch(/^fine-tuning SwinUNETR \(feature size 12, 10 classes, roi 32, 1 crops per volume\) from fresh weights \(seed 3\)/);
  });

  test('writes checkpoints, validation Dice per class and mean, dice.svg, best.ckpt and the segmenter', () => {
    expect(listCheckpoints(path.join(unbroken, 'checkpoints')).map((c) => c.step)).toEqual([2, 4]);
    const dice = records(unbroken, 'val_dice_mean');
    expect(dice.map(([s]) => s)).toEqual([0, 2, 4]);
    expect(dice.every(([, v]) => v >= 0 && v <= 1)).toBe(true);
    expect(records(unbroken, 'val_dice.liver').map(([s]) => s)).toEqual([0, 2, 4]);
    expect(records(unbroken, 'val_dice.inferior_vena_cava')).toHaveLength(3);
    const best = loadCheckpoint<RunState<unknown, unknown>>(path.join(unbroken, 'best.ckpt'));
    const top = Math.max(...dice.map(([, v]) => v));
    expect(best.meta.best).toEqual({ key: 'val_dice_mean', value: top, step: dice.find(([, v]) => v === top)![0] });
    expect(best.step).toBe(best.meta.best!.step);
    // The best value travels in the run state: the last checkpoint knows it.
    expect(loadCheckpoint<RunState<unknown, unknown>>(listCheckpoints(path.join(unbroken, 'checkpoints')).pop()!.file).meta.best).toEqual(best.meta.best);
    for (const file of ['loss.svg', 'dice.svg']) expect(fs.readFileSync(path.join(unbroken, file), 'utf8')).toContain('<polyline');
    // The segmenter records what applying it needs: the roi, the datalist's class names, the chain's 1.5 mm.
    const labels = JSON.parse(fs.readFileSync(datalist, 'utf8')).labels as Record<string, string>;
    expect(readSegmenterFacts(path.join(unbroken, 'segmenter.onnx'))).toEqual({
      roi: 32,
      classNames: new Map(Object.entries(labels).map(([k, v]) => [Number(k), v])),
      preprocessing: { family: 'abdomen', spacing: [1.5, 1.5, 1.5] },
    });
  });

  test('killed with SIGKILL mid-run, --resume gives the unbroken run\'s metrics and parameters exactly', async () => {
    const broken = path.join(work, 'broken');
    const child = run(broken, ARGS);
    await signalWhen(child, () => fs.existsSync(path.join(broken, 'metrics.jsonl')) && records(broken, 'loss').length >= 3, 'SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const resumed = await finish(spawnVoco(['finetune', '--logdir', broken, '--resume']));
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/resuming from step 2/);
    for (const key of ['loss', 'val_dice_mean', 'val_dice.spleen']) expect(records(broken, key)).toEqual(records(unbroken, key));
    const [a, b] = [lastParameters(broken), lastParameters(unbroken)];
    expect([...a.keys()]).toEqual([...b.keys()]);
    for (const [name, t] of a) expect(bytes(t).equals(bytes(b.get(name)!))).toBe(true);
  });

  test('--freeze-encoder leaves swinViT and encoder1..4, encoder10 unchanged; bad files are skipped with a warning', async () => {
    const dir = path.join(work, 'bad');
    fs.mkdirSync(dir);
    const garbage = path.join(dir, 'broken.nii');
    fs.writeFileSync(garbage, Buffer.alloc(400, 7));
    const json = JSON.parse(fs.readFileSync(datalist, 'utf8'));
    const base = path.dirname(datalist);
    const abs = (e: { image: string; label: string }) => ({ image: path.join(base, e.image), label: path.join(base, e.label) });
    const list = path.join(dir, 'dataset.json');
    fs.writeFileSync(list, JSON.stringify({ labels: json.labels, training: [...json.training.map(abs), { image: garbage, label: garbage }], validation: [{ image: garbage, label: garbage }, ...json.validation.map(abs)] }));
    const logdir = path.join(work, 'frozen');
    const done = await finish(run(logdir, ['--max-steps', '3', '--warmup-steps', '0', '--freeze-encoder', '--seed', '4'], SMALL.map((a) => (a === datalist ? list : a))));
    expect(done.code).toBe(0);
    expect(done.stderr).toMatch(/encoder frozen/);
    expect(done.stderr).toMatch(new RegExp(`warning: skipping bad validation file ${garbage}: `));
    expect(done.stderr).toMatch(new RegExp(`finished at step 3: .*; 0 step\\(s\\) skipped, [01] bad file\\(s\\) skipped`));
    expect(records(logdir, 'val_dice_mean')).toHaveLength(2);

    const trainer = await loadArtifacts(path.join(logdir, 'artifacts'), { seed: 4, threads: 1 });
    const trained = lastParameters(logdir);
    const moments = [...loadCheckpoint(listCheckpoints(path.join(logdir, 'checkpoints')).pop()!.file).groups.get(OPTIMIZER_GROUP)!.keys()];
    let frozen = 0;
    let changed = 0;
    for (const name of trainer.parameters.names()) {
      const initial = Buffer.from((trainer.parameters.get(name) as Float32Array).buffer.slice(0));
      const same = initial.equals(bytes(trained.get(name)!));
      if (/^(swinViT|encoder(1|2|3|4|10))\./.test(name)) {
        expect(same).toBe(true);
        expect(moments.some((m) => m.startsWith(`${name}.`))).toBe(false);
        frozen++;
      } else if (name.endsWith('.weight') && !same) changed++;
    }
    await trainer.release();
    expect(frozen).toBeGreaterThan(50);
    expect(changed).toBeGreaterThan(10);
  });

  test('a datalist without labels is one clear line and exit code 2', async () => {
    const list = path.join(work, 'unlabelled.json');
    const image = path.join(path.dirname(datalist), JSON.parse(fs.readFileSync(datalist, 'utf8')).training[0].image);
    fs.writeFileSync(list, JSON.stringify({ training: [{ image }], validation: [] }));
    const done = await finish(run(path.join(work, 'unlabelled'), [], SMALL.map((a) => (a === datalist ? list : a))));
    expect(done.code).toBe(2);
    expect(done.stderr.trim().split('\n')).toHaveLength(1);
    expect(done.stderr).toMatch(new RegExp(`${list}: training\\[0\\] \\(.*phantom_000\\.nii\\.gz\\) has no label path`));
  });
});
