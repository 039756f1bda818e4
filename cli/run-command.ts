/** What `voco train` and `voco finetune` share: option-to-config mapping, --resume, and stopping on signals. */
import { UserError } from '../common/user-error';
import { broadcastJson, Communicator } from '../runtime/distributed/communicator';
import { runRank } from '../runtime/distributed/failure';
import { openCommunicator } from '../runtime/distributed/open';
import type { LoopOptions } from '../runtime/loop/loop';
import { resumeCheckpoint } from '../runtime/loop/run-state';

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

export interface TrainingCommand<Config extends { readonly logdir: string; readonly deviceId: number }> {
  /** The config of a fresh run before the options. */
  readonly defaults: Config;
  /** The options given, by config field. */
  readonly explicit: Partial<Record<keyof Config, unknown>>;
  readonly resume: string | true | undefined;
  readonly distributed?: boolean;
  readonly digestEvery?: number;
  /** The run's config (checked) from `merged`: the defaults or the resumed checkpoint's config, with the options. */
  configure(merged: Config): Config;
  run(config: Config, options: LoopOptions & { signal: AbortSignal }): Promise<unknown>;
}

/**
 * A training command's run: one process, or one rank under mpirun (each rank's device its place on its machine);
 * `--resume` continues the checkpoint's config, which rank 0 alone reads (the others may run where the logdir is
 * not); the first stop signal stops after the current step with a checkpoint.
 */
export async function runTrainingCommand<Config extends { readonly logdir: string; readonly deviceId: number }>(c: TrainingCommand<Config>): Promise<void> {
  const logdir = (c.explicit.logdir as string | undefined) ?? c.defaults.logdir;
  if (c.digestEvery !== undefined && !(Number.isInteger(c.digestEvery) && c.digestEvery >= 0)) {
    throw new UserError(`--digest-every must be a whole number >= 0, got ${c.digestEvery}`);
  }
  // Outside mpirun this is a single process and nothing of MPI is loaded.
  const comm = openCommunicator({ distributed: c.distributed });
  await runRank(comm, async () => {
    const resumed = c.resume ? broadcastJson(comm, comm.rank === 0 ? resumeCheckpoint<Config, unknown>(logdir, c.resume).meta.config : undefined) : undefined;
    const base = resumed ?? c.defaults;
    const deviceId = c.explicit.deviceId ?? (comm.distributed ? comm.localRank : base.deviceId);
    const config = c.configure({ ...base, ...c.explicit, logdir, deviceId } as Config);
    await stoppable(comm, (signal) => c.run(config, { resume: c.resume, comm, digestEvery: c.digestEvery, signal }));
  });
}
