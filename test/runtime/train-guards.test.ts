/**
 * What keeps a run's logdir consistent, on real `voco train` processes (the smallest model, built-in phantoms):
 * one live run per logdir, and a full disk that stops the run with one line and leaves the last checkpoint whole.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { listCheckpoints, loadCheckpoint } from '../../io/checkpoint';
import { LOCK_FILE } from '../../runtime/loop/logdir-lock';
import { finish, spawnVoco } from '../helpers/cli';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-guards-'));
const cacheDir = path.join(work, 'cache');
const SMALL = ['--preset', 'tiny', '--roi', '32', '--sw-batch-size', '1', '--threads', '1', '--workers', '1', '--phantom-count', '4', '--held-out-batches', '0', '--cache-dir', cacheDir];

const train = (logdir: string, args: string[]) => spawnVoco(['train', ...SMALL, '--logdir', logdir, ...args]);

const until = (ready: () => boolean) =>
  new Promise<void>((resolve) => {
    const timer = setInterval(() => ready() && (clearInterval(timer), resolve()), 50);
  });

/** Each test runs several real training processes (artifacts built, steps taken): minutes on a loaded 2-core machine. */
const PROCESS_TEST_MS = 600_000;

test('a second run on a logdir in use is refused with a line naming the first; after a kill, --resume takes over', async () => {
  const logdir = path.join(work, 'busy');
  const first = train(logdir, ['--max-steps', '50', '--checkpoint-every', '1']);
  const firstDone = finish(first);
  await until(() => fs.existsSync(path.join(logdir, 'checkpoints')) && listCheckpoints(path.join(logdir, 'checkpoints')).length > 0);
  const second = await finish(train(logdir, ['--resume']));
  expect(second.code).toBe(2);
  expect(second.stderr.trim().split('\n')).toHaveLength(1);
  expect(second.stderr).toMatch(new RegExp(`^voco: ${logdir} is in use by another run \\(pid ${first.pid}, started .*\\); wait for it or stop it, or choose another --logdir`));
  first.kill('SIGKILL');
  await firstDone;
  const resumed = await finish(train(logdir, ['--resume', '--max-steps', String(listCheckpoints(path.join(logdir, 'checkpoints')).pop()!.step + 1)]));
  expect(resumed.code).toBe(0);
  expect(resumed.stderr).toContain(`warning: taking over ${path.join(logdir, LOCK_FILE)} from a run that is gone (pid ${first.pid})`);
  expect(fs.existsSync(path.join(logdir, LOCK_FILE))).toBe(false);
}, PROCESS_TEST_MS);

// Mounting a small tmpfs needs root (CI and these machines run as root); elsewhere the test says why it is skipped.
const mountPoint = path.join(work, 'small-disk');
fs.mkdirSync(mountPoint);
let mounted = false;
try {
  // Room for the artifacts (14 MB) and two checkpoints of the tiny model with its AdamW moments (100 MB each).
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=384m', 'tmpfs', mountPoint], { stdio: 'ignore' });
  mounted = true;
} catch {
  console.warn('full-disk test skipped: cannot mount a tmpfs here (needs root)');
}
afterAll(() => {
  if (mounted) execFileSync('umount', [mountPoint]);
  fs.rmSync(work, { recursive: true, force: true });
});

(mounted ? test : test.skip)('a full disk while writing a checkpoint stops the run with one line; the last checkpoint stays whole', async () => {
  const logdir = path.join(mountPoint, 'run');
  const run = await finish(train(logdir, ['--max-steps', '2', '--checkpoint-every', '1', '--keep-checkpoints', '1']));
  expect(run.code).toBe(0);
  const dir = path.join(logdir, 'checkpoints');
  const [last] = listCheckpoints(dir);
  expect(last.step).toBe(2);
  const before = fs.readFileSync(last.file);
  // Leave 256 KiB: room for the metrics of a step, not for a checkpoint.
  const { bavail, bsize } = fs.statfsSync(mountPoint);
  fs.writeFileSync(path.join(mountPoint, 'filler'), Buffer.alloc(bavail * bsize - 256 * 1024));

  const full = await finish(train(logdir, ['--resume', '--max-steps', '4']));
  expect(full.code).toBe(2);
  const lines = full.stderr.trim().split('\n').filter((l) => l.startsWith('voco:'));
  expect(lines).toEqual([
    `voco: no space left on the device while writing a checkpoint at step 3 (logdir ${logdir}); the run stopped and the last checkpoint, ${last.file}, is whole: free space, then --resume`,
  ]);
  expect(listCheckpoints(dir).map((c) => c.step)).toEqual([2]);
  expect(fs.readFileSync(last.file).equals(before)).toBe(true);
  expect(loadCheckpoint(last.file).step).toBe(2);
  expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  expect(fs.existsSync(path.join(logdir, LOCK_FILE))).toBe(false);

  fs.rmSync(path.join(mountPoint, 'filler'));
  const resumed = await finish(train(logdir, ['--resume', '--max-steps', '4']));
  expect(resumed.code).toBe(0);
  expect(resumed.stderr).toMatch(/resuming from step 2/);
  expect(listCheckpoints(dir).map((c) => c.step)).toEqual([4]);
}, PROCESS_TEST_MS);
