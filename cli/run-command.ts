/** What `voco train` and `voco finetune` share: option-to-config mapping, --resume, and stopping on signals. */
import type { Communicator } from '../runtime/distributed/communicator';

/** The config fields given on the command line (or by --config), by the option -> field table. */
export function explicitFields<Config>(args: Readonly<Record<string, unknown>>, fields: Readonly<Record<string, keyof Config>>): Partial<Record<keyof Config, unknown>> {
  const explicit: Partial<Record<keyof Config, unknown>> = {};
  for (const [option, field] of Object.entries(fields)) {
    const value = args[option];
    if (value !== undefined) explicit[field] = value;
  }
  return explicit;
}

/** `--resume` alone: the newest checkpoint (true); `--resume FILE`: that file. */
export function resumeOption(value: unknown): string | true | undefined {
  return value === true || value === '' ? true : typeof value === 'string' ? value : undefined;
}

/**
 * Signals that stop a run after the current step with a checkpoint (a second one quits at once). mpirun kills the
 * job on SIGINT and SIGTERM but passes SIGUSR2 on to every rank: `kill -USR2 <mpirun's pid>` stops a distributed
 * run cleanly.
 */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGUSR2'] as const;

/** Runs `run` with a signal that the first stop signal aborts (after the current step); the second quits at once. */
export async function stoppable(comm: Communicator | undefined, run: (signal: AbortSignal) => Promise<unknown>): Promise<void> {
  const controller = new AbortController();
  const onInterrupt = () => {
    if (controller.signal.aborted) process.exit(130);
    if ((comm?.rank ?? 0) === 0) process.stderr.write('\nvoco: stopping after this step and writing a checkpoint (Ctrl-C again to quit at once)\n');
    controller.abort();
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onInterrupt);
  try {
    await run(controller.signal);
  } finally {
    for (const signal of STOP_SIGNALS) process.off(signal, onInterrupt);
  }
}
