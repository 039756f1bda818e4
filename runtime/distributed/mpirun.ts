/**
 * Starting TypeScript ranks on this machine with Open MPI's mpirun (used by the tests and the all-reduce benchmark;
 * training jobs are started by the user's own mpirun line, see docs/distributed.md).
 */
import { spawnSync } from 'node:child_process';

/** The mpirun on PATH, or undefined when Open MPI is not installed. */
export function findMpirun(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v mpirun'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path ? path : undefined;
}

/**
 * Arguments for `mpirun` that start `ranks` copies of a TypeScript script under node + tsx on this machine, each
 * rank on its own core if there are enough, else sharing (oversubscribed). Root is allowed (containers, CI).
 */
export function localMpirunArgs(ranks: number, script: string, args: readonly string[] = []): string[] {
  return [
    '--allow-run-as-root',
    '--oversubscribe',
    '--bind-to', 'none',
    '-np', String(ranks),
    process.execPath,
    '--require', require.resolve('tsx/cjs'),
    script,
    ...args,
  ];
}
