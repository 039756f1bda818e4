import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SECTION_BEGIN, SECTION_END } from '../../bench/downstream/report';
import { MetricsLog } from '../../runtime/observe/metrics-log';

// `npm run bench -- downstream` end to end in its tiniest form: 2 pre-training steps, one training-set size (2
// volumes), one seed, 2 fine-tuning steps validated at the start and the end on one volume; real `voco` processes.
const ROOT = path.resolve(__dirname, '../..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-downstream-'));
const doc = path.join(work, 'downstream.md');
const plot = path.join(work, 'downstream.svg');
const TINY = ['--work', work, '--cache-dir', path.join(work, 'cache'), '--doc', doc, '--plot', plot,
  '--pretrain-steps', '2', '--sizes', '2', '--seeds', '0', '--steps', '2', '--val-every', '2', '--validation', '1'];

function bench(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/downstream.bench.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let [stdout, stderr] = ['', ''];
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

const section = (text: string) => text.slice(text.indexOf(SECTION_BEGIN) + SECTION_BEGIN.length, text.indexOf(SECTION_END));
const logdir = (name: string) => path.join(work, 'finetune', `2-volumes-${name}-seed-0`);
const metrics = (name: string) => new MetricsLog(logdir(name)).read();
const untimed = (name: string) => metrics(name).map(({ seconds, data_wait, ...rest }) => rest);
const finalDice = (name: string) => metrics(name).filter((r) => 'val_dice_mean' in r).pop()!.val_dice_mean as number;

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('npm run bench -- downstream (tiny)', () => {
  let first: Awaited<ReturnType<typeof bench>>;
  const original = fs.readFileSync(path.join(ROOT, 'docs/downstream.md'), 'utf8');

  beforeAll(async () => {
    fs.writeFileSync(doc, original);
    first = await bench(TINY);
    if (first.code !== 0) throw new Error(`the benchmark failed (${first.code}):\n${first.stderr.slice(-3000)}`);
  }, 600_000);

  test('pre-trains, fine-tunes from VoCo, from the .pt and from scratch, with progress lines', () => {
    expect(first.stderr).toMatch(/\[1\/4\] pre-training \(voco train defaults, 2 steps\): starting at /);
    for (const [i, from] of [[2, 'VoCo'], [3, 'VoCo pt'], [4, 'scratch']] as const) {
      expect(first.stderr).toMatch(new RegExp(`\\[${i}/4\\] fine-tuning 2 volumes from ${from}, seed 0: done in \\S+, 2 steps at [\\d.]+ steps/s`));
    }
    expect(first.stderr).toMatch(/benchmark ETA \S+/);
    for (const name of ['VoCo', 'VoCo-pt', 'scratch']) expect(metrics(name).filter((r) => 'val_dice_mean' in r).map((r) => r.step)).toEqual([0, 2]);
  });

  test('the .pt run loads the same tensors and logs the same numbers as the logdir run', () => {
    expect(untimed('VoCo-pt')).toEqual(untimed('VoCo'));
    expect(untimed('VoCo-pt')).toHaveLength(4); // Dice at 0, loss at 1 and 2, Dice at 2
    const results = section(fs.readFileSync(doc, 'utf8'));
    expect(results).toMatch(/imports of `.*pretrain` and of the `\.pt`: identical \((\d+) loaded and \d+ fresh parameters\)/);
    const loaded = [...results.matchAll(/: loaded (\d+) of (\d+) parameters/g)].map((m) => m[1]);
    expect(loaded).toHaveLength(2);
    expect(loaded[0]).toBe(loaded[1]);
    expect(results).toMatch(/step-00000002\.ckpt: loaded .*relative_position_index not in the file/);
    expect(results).toMatch(/voco_weights\.pt: loaded .*8 relative_position_index buffers checked/);
    expect(results).toMatch(/the two runs' metrics: identical \(4 metrics\.jsonl records/);
  });

  test('writes the table from the runs\' metrics into the document between its markers, and the plot', () => {
    const written = fs.readFileSync(doc, 'utf8');
    expect(written.slice(0, written.indexOf(SECTION_BEGIN))).toBe(original.slice(0, original.indexOf(SECTION_BEGIN)));
    const results = section(written);
    expect(results).toContain(`npm run bench -- downstream ${TINY.join(' ')}`);
    const rows = results.split('\n').filter((l) => /^\| 2 \|/.test(l));
    const [voco, scratch] = [finalDice('VoCo'), finalDice('scratch')];
    expect(rows).toEqual([
      expect.stringMatching(new RegExp(`^\\| 2 \\| scratch \\| ${scratch.toFixed(3)} \\| ${scratch.toFixed(3)} \\| `)),
      expect.stringMatching(new RegExp(`^\\| 2 \\| VoCo \\| ${voco.toFixed(3)} \\| ${voco.toFixed(3)} \\| `)),
      expect.stringMatching(/^\| 2 \| \*\*gain VoCo − scratch\*\* \| [+−]\d\.\d{3} \|/),
    ]);
    const gain = voco - scratch;
    expect(rows[2]).toContain(`${gain >= 0 ? '+' : '−'}${Math.abs(gain).toFixed(3)}`);
    expect(results).toContain('![Validation mean Dice against the step](downstream.svg)');
    const svg = fs.readFileSync(plot, 'utf8');
    expect(svg).toMatch(/^<svg /);
    expect(svg).toContain('>n=2 VoCo</text>');
    expect(svg).toContain('>n=2 scratch</text>');
    expect(svg.match(/<polyline points="[^"]+,[^"]+ [^"]+"/g)).toHaveLength(4); // each line drawn faint and strong, 2 points
  });

  test('run again with the same options, it reuses the finished runs and resumes an unfinished one', async () => {
    const scratch = untimed('scratch');
    fs.rmSync(path.join(logdir('scratch'), 'segmenter.onnx')); // as if stopped after its last checkpoint
    const again = await bench(TINY);
    expect(again.code).toBe(0);
    expect(again.stderr.match(/: reusing the finished run in /g)).toHaveLength(3);
    expect(again.stderr).toMatch(/\[4\/4\] fine-tuning 2 volumes from scratch, seed 0: resuming from step 2 at .*: voco finetune --resume --logdir /);
    expect(again.stderr).not.toMatch(/: starting at /);
    expect(fs.existsSync(path.join(logdir('scratch'), 'segmenter.onnx'))).toBe(true);
    expect(untimed('scratch')).toEqual(scratch);
    expect(section(fs.readFileSync(doc, 'utf8'))).toContain(`| 2 | VoCo | ${finalDice('VoCo').toFixed(3)} |`);
  }, 180_000);
});

describe('npm run bench -- downstream: bad options', () => {
  test('a bad size list or a document without the markers is one line and status 2, before any run', async () => {
    const bad = await bench(['--sizes', '2,0', '--work', path.join(work, 'bad')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('downstream: --sizes must be a comma-separated list of whole numbers >= 1, got 2,0');
    const bare = path.join(work, 'bare.md');
    fs.writeFileSync(bare, '# no results section\n');
    const noMarkers = await bench(['--doc', bare, '--work', path.join(work, 'bad')]);
    expect(noMarkers.code).toBe(2);
    expect(noMarkers.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^downstream: ${bare}: lacks the lines <!-- downstream results: begin`))]);
    expect(fs.existsSync(path.join(work, 'bad'))).toBe(false);
  });
});
