/**
 * One live run per logdir: two runs on one logdir (by mistake, or a resume while the first still runs) would write
 * the same checkpoints and metrics. The lock is `<logdir>/run.lock`, holding the owner's pid and host; the lock
 * of a run that is gone (killed, crashed) is taken over.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../../common/user-error';
import type { Log } from './task';

export const LOCK_FILE = 'run.lock';

/** The logdir belongs to another run that is still alive. */
export class LogdirBusyError extends UserError {}

interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly started: string;
}

/** Locks this process holds: a lock naming our own pid that is not among them was left by an earlier process. */
const held = new Set<string>();

export class LogdirLock {
  private constructor(readonly file: string) {}

  /** Takes the lock of `logdir` (which exists), or throws LogdirBusyError naming the live run that holds it. */
  static acquire(logdir: string, log: Log): LogdirLock {
    const file = path.resolve(logdir, LOCK_FILE);
    const me: LockOwner = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
    for (;;) {
      try {
        fs.writeFileSync(file, JSON.stringify(me) + '\n', { flag: 'wx' });
        held.add(file);
        return new LogdirLock(file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const owner = readOwner(file);
      if (owner && isAlive(owner, file)) {
        const where = owner.host === me.host ? '' : ` on ${owner.host}`;
        throw new LogdirBusyError(
          `${logdir} is in use by another run (pid ${owner.pid}${where}, started ${owner.started}); ` +
            `wait for it or stop it, or choose another --logdir` + (where ? ` (remove ${file} if that run is gone)` : ''),
        );
      }
      if (owner) log(`warning: taking over ${file} from a run that is gone (pid ${owner.pid})`);
      // Whoever removes the stale lock first creates the next one; a run that loses the race sees it live.
      fs.rmSync(file, { force: true });
    }
  }

  release(): void {
    held.delete(this.file);
    if (readOwner(this.file)?.pid === process.pid) fs.rmSync(this.file, { force: true });
  }
}

function readOwner(file: string): LockOwner | undefined {
  try {
    const owner = JSON.parse(fs.readFileSync(file, 'utf8')) as LockOwner;
    return Number.isInteger(owner.pid) ? owner : undefined;
  } catch {
    // missing, or cut short by a crash between create and write: nobody holds it
    return undefined;
  }
}

/** Whether the lock's owner still runs. A lock from another host counts as live: its process cannot be checked. */
function isAlive(owner: LockOwner, file: string): boolean {
  if (owner.host !== os.hostname()) return true;
  if (owner.pid === process.pid) return held.has(file);
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(owner.pid);
}

/** A process that has exited but is not yet reaped by its parent (e.g. an MPI rank after its job was aborted). */
function isZombie(pid: number): boolean {
  try {
    // /proc/<pid>/stat: "pid (comm) state ..."; comm may hold spaces and parentheses, the state follows the last ')'.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}
