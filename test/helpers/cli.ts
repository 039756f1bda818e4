import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

/** A real `voco` process (cli/main.ts through tsx), run from the repository root. */
export function spawnVoco(args: readonly string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * `voco` ranks in one MPI job on this machine, one per argument list (mpirun's `a : b` form, so ranks may differ),
 * each `node --require tsx/cjs` as docs/distributed.md starts them, so that mpirun's signals reach the rank.
 */
export function spawnMpiVoco(mpirun: string, ranks: readonly (readonly string[])[]): ChildProcess {
  const apps = ranks.flatMap((args, i) => [...(i > 0 ? [':'] : []), '-np', '1', process.execPath, '--require', require.resolve('tsx/cjs'), path.join(ROOT, 'cli/main.ts'), ...args]);
  return spawn(mpirun, ['--allow-run-as-root', '--oversubscribe', '--bind-to', 'none', ...apps], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Its exit code and everything it wrote to stderr; after `timeoutSeconds` (when given) it is sent SIGTERM. */
export async function finish(child: ChildProcess, timeoutSeconds?: number): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout?.resume();
  const timer = timeoutSeconds === undefined ? undefined : setTimeout(() => child.kill('SIGTERM'), timeoutSeconds * 1000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  return { code, stderr };
}

/** Sends `signal` to `child` once `ready()` holds (polled every 50 ms); fails if the child exits first. */
export function signalWhen(child: ChildProcess, ready: () => boolean, signal: NodeJS.Signals): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (ready()) {
        clearInterval(timer);
        child.kill(signal);
        resolve();
      }
    }, 50);
    child.once('exit', () => {
      clearInterval(timer);
      reject(new Error(`the run ended before it could be sent ${signal}`));
    });
  });
}

/** A real `voco` process run to its end: exit status and what it wrote. */
export function runVoco(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}
