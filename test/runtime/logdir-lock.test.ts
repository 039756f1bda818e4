import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LOCK_FILE, LogdirBusyError, LogdirLock } from '../../runtime/loop/logdir-lock';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-lock-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The pid of a process that has exited (and been reaped). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString());
}

describe('logdir lock', () => {
  test('a logdir held by a live run is refused with a line naming its pid; released, it can be taken again', () => {
    const logdir = fs.mkdtempSync(path.join(tmp, 'run-'));
    const lines: string[] = [];
    const first = LogdirLock.acquire(logdir, (l) => lines.push(l));
    expect(JSON.parse(fs.readFileSync(path.join(logdir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    expect(() => LogdirLock.acquire(logdir, (l) => lines.push(l))).toThrow(LogdirBusyError);
    expect(() => LogdirLock.acquire(logdir, (l) => lines.push(l))).toThrow(new RegExp(`is in use by another run \\(pid ${process.pid}, started `));
    first.release();
    expect(fs.existsSync(path.join(logdir, LOCK_FILE))).toBe(false);
    LogdirLock.acquire(logdir, (l) => lines.push(l)).release();
    expect(lines).toEqual([]);
  });

  test('the lock of a run that is gone is taken over, with a warning', () => {
    const logdir = fs.mkdtempSync(path.join(tmp, 'run-'));
    const pid = deadPid();
    fs.writeFileSync(path.join(logdir, LOCK_FILE), JSON.stringify({ pid, host: os.hostname(), started: '2020-01-01T00:00:00.000Z' }));
    const lines: string[] = [];
    const lock = LogdirLock.acquire(logdir, (l) => lines.push(l));
    expect(lines).toEqual([`warning: taking over ${path.join(path.resolve(logdir), LOCK_FILE)} from a run that is gone (pid ${pid})`]);
    expect(JSON.parse(fs.readFileSync(path.join(logdir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    lock.release();
  });

  test('the lock of a run that has exited but is not yet reaped (a zombie, as MPI ranks of an aborted job) is taken over', async () => {
    // The shell starts a short sleep in the background and execs into a long one, which never reaps it: the short
    // one stays a zombie. (A child that exited before the exec, such as `true`, could be reaped by the shell first.)
    const parent = spawn('sh', ['-c', 'sleep 0.5 & echo $!; exec sleep 30']);
    const pid = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString()))));
    try {
      const deadline = Date.now() + 10_000;
      while (!/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')).toMatch(/^\d+ \(.*\) Z/);
      const logdir = fs.mkdtempSync(path.join(tmp, 'run-'));
      fs.writeFileSync(path.join(logdir, LOCK_FILE), JSON.stringify({ pid, host: os.hostname(), started: '2020-01-01T00:00:00.000Z' }));
      const lines: string[] = [];
      LogdirLock.acquire(logdir, (l) => lines.push(l)).release();
      expect(lines).toEqual([`warning: taking over ${path.join(path.resolve(logdir), LOCK_FILE)} from a run that is gone (pid ${pid})`]);
    } finally {
      parent.kill();
    }
  });

  test('a lock naming this process that it does not hold (left by an earlier process with the same pid) is stale', () => {
    const logdir = fs.mkdtempSync(path.join(tmp, 'run-'));
    fs.writeFileSync(path.join(logdir, LOCK_FILE), JSON.stringify({ pid: process.pid, host: os.hostname(), started: 'then' }));
    const lines: string[] = [];
    LogdirLock.acquire(logdir, (l) => lines.push(l)).release();
    expect(lines).toHaveLength(1);
  });

  test('a lock from another host is left alone: the message says how to clear it', () => {
    const logdir = fs.mkdtempSync(path.join(tmp, 'run-'));
    const file = path.join(logdir, LOCK_FILE);
    fs.writeFileSync(file, JSON.stringify({ pid: 1, host: `not-${os.hostname()}`, started: 'then' }));
    expect(() => LogdirLock.acquire(logdir, () => undefined)).toThrow(`(pid 1 on not-${os.hostname()}, started then)`);
    expect(() => LogdirLock.acquire(logdir, () => undefined)).toThrow(`remove ${path.resolve(file)} if that run is gone`);
  });
});
