import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { parseShard } from '../../cli/cache';
import { shardOf } from '../../data/cache/build';
import { writePhantomDataset } from '../../data/phantom/dataset';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');

async function voco(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    // `node --import tsx` is what `npx tsx` runs, without npm's start-up time.
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { cwd: ROOT, timeout: 60000 });
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const e = error as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

function entries(cacheDir: string, suffix: string): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(join(dir, d.name)) : [join(dir, d.name)]));
  return walk(cacheDir).filter((f) => f.endsWith(suffix)).map((f) => relative(cacheDir, f)).sort();
}

let dir: string;
let dataset: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'voco-cache-build-'));
  const phantoms = writePhantomDataset(join(dir, 'phantoms'), {
    count: 5,
    seed: 3,
    phantom: { geometry: { inPlaneSize: [40, 56], slices: [16, 24] } },
  });
  // The phantom list plus one file that is not NIfTI.
  writeFileSync(join(dir, 'phantoms', 'imagesTr', 'broken.nii.gz'), 'not a volume');
  const json = JSON.parse(readFileSync(phantoms, 'utf8'));
  json.training.push({ image: './imagesTr/broken.nii.gz' });
  dataset = join(dir, 'phantoms', 'with-broken.json');
  writeFileSync(dataset, JSON.stringify(json));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('voco cache build', () => {
  it('builds every file once, reports the bad one, and on a second run finds everything cached', async () => {
    const cacheDir = join(dir, 'full');
    const first = await voco('cache', 'build', '--data', dataset, '--cache-dir', cacheDir, '--workers', '2');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/6 source files in [\d.]+ s: 5 built, 0 already cached, 1 bad/);
    expect(first.stdout).toMatch(/bad: .*broken\.nii\.gz: not a NIfTI file/);
    expect(entries(cacheDir, '.vol')).toHaveLength(5);
    expect(entries(cacheDir, '.bad.json')).toHaveLength(1);

    // A damaged entry is found by its checksum and rebuilt; the bad file is not retried.
    const victim = join(cacheDir, entries(cacheDir, '.vol')[0]);
    writeFileSync(victim, readFileSync(victim).subarray(0, 500));
    const second = await voco('cache', 'build', '--data', dataset, '--cache-dir', cacheDir);
    expect(second.stdout).toMatch(/1 built \(1 of them replacing damaged entries\), 4 already cached, 1 bad/);
    expect(second.stdout).toMatch(/recorded by an earlier run/);

    // Shards 1/2 and 2/2 built into another folder hold exactly the same entries as the whole.
    const sharded = join(dir, 'sharded');
    const [a, b] = await Promise.all([
      voco('cache', 'build', '--data', dataset, '--cache-dir', sharded, '--shard', '1/2'),
      voco('cache', 'build', '--data', dataset, '--cache-dir', sharded, '--shard', '2/2'),
    ]);
    expect(a.stdout).toMatch(/\(shard 1\/2\): 3 source files/);
    expect(b.stdout).toMatch(/\(shard 2\/2\): 3 source files/);
    expect(entries(sharded, '.vol')).toEqual(entries(cacheDir, '.vol'));
    for (const entry of entries(sharded, '.vol')) expect(readFileSync(join(sharded, entry))).toEqual(readFileSync(join(cacheDir, entry)));
  });

  it('rejects a bad shard or cache folder with a one-line error', async () => {
    const errorLines = (stderr: string): string[] => stderr.trim().split('\n').filter((l) => l.startsWith('voco:'));
    const shard = await voco('cache', 'build', '--data', dataset, '--cache-dir', join(dir, 'x'), '--shard', '0/2');
    expect(shard.code).toBe(2);
    expect(errorLines(shard.stderr)).toEqual(["voco: --shard must be i/N with 1 <= i <= N (e.g. 2/4), got '0/2'"]);
    const folder = await voco('cache', 'build', '--data', dataset, '--cache-dir', join(dataset, 'sub'));
    expect(folder.code).toBe(2);
    expect(errorLines(folder.stderr)).toEqual([`voco: --cache-dir ${join(dataset, 'sub')} is not a writable folder (ENOTDIR)`]);
    // The list has an entry without a label, so it builds volumes for voco train unless told otherwise.
    const cacheDir = join(dir, 'x');
    const misuse = [
      [['--spacing', '3', '3', '3'], "voco: --spacing applies to image/label pairs (--for finetune); pre-training volumes take their family's voxel size"],
      [['--for', 'finetune'], `voco: ${dataset}: training[5] (./imagesTr/broken.nii.gz) has no label path`],
      [['--for', 'finetune', '--family', 'chest'], 'voco: --family chest: voco finetune preprocesses image/label pairs with the abdomen chain (--for train builds pre-training volumes)'],
      [['--for', 'finetune', '--resize'], 'voco: --resize applies to pre-training volumes (--for train), not to image/label pairs'],
      [['--for', 'finetune', '--spacing', '3', '0', '3'], 'voco: --spacing must be three voxel sizes in mm > 0, got [3,0,3]'],
    ] as const;
    for (const [args, line] of misuse) {
      const result = await voco('cache', 'build', '--data', dataset, '--cache-dir', cacheDir, ...args);
      expect([result.code, errorLines(result.stderr)]).toEqual([2, [line]]);
    }
  });

  it('splits sources into shards whose union is the whole, in stable order', () => {
    const items = Array.from({ length: 11 }, (_, i) => i);
    const parts = [1, 2, 3].map((index) => shardOf(items, { index, count: 3 }));
    expect(parts[0]).toEqual([0, 3, 6, 9]);
    expect(parts.flat().sort((x, y) => x - y)).toEqual(items);
    expect(parseShard('2/4')).toEqual({ index: 2, count: 4 });
    for (const bad of ['5/4', '1/0', 'a/b', '1']) expect(() => parseShard(bad)).toThrow(/--shard/);
  });
});

// Entries are keyed by absolute path, size and mtime: a copy of a file is a different source.
it('keys entries by the source file, so a copied file gets its own entry', async () => {
  const cacheDir = join(dir, 'copies');
  const source = join(dir, 'phantoms', 'imagesTr', 'phantom_000.nii.gz');
  copyFileSync(source, join(dir, 'copy.nii.gz'));
  writeFileSync(join(dir, 'two.json'), JSON.stringify({ training: [source, join(dir, 'copy.nii.gz')] }));
  const result = await voco('cache', 'build', '--data', join(dir, 'two.json'), '--cache-dir', cacheDir, '--family', 'chest');
  expect(result.stdout).toMatch(/2 built/);
  expect(entries(cacheDir, '.vol')).toHaveLength(2);
});
