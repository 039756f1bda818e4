/**
 * The `voco` runs of the downstream benchmark, one after the other as real processes, with a line at each start
 * and end (steps/s, the benchmark's ETA). A run that a previous invocation finished with the same arguments is
 * reused; one it left unfinished continues with `--resume` (exact: the same numbers as an unbroken run).
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../../common/user-error';
import { checkpointDir, listCheckpoints } from '../../io/checkpoint';
import { formatDuration } from '../../runtime/observe/progress';

const ROOT = path.resolve(__dirname, '../..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const MAIN = path.join(ROOT, 'cli', 'main.ts');
/** What a run's folder records of how it was started (to tell whether it can be reused). */
const RUN_ARGS_FILE = 'bench-run.json';

/** A `voco` run failed: its command and the tail of what it said. */
export class BenchRunError extends UserError {}

export type RunKind = 'pre-training' | 'fine-tuning';

export interface PlannedRun {
  readonly kind: RunKind;
  /** What the progress lines call it, e.g. "2 volumes, VoCo, seed 0". */
  readonly label: string;
  /** The `voco` arguments besides `--logdir`. */
  readonly args: readonly string[];
  readonly logdir: string;
  /** A file the run leaves in its logdir only when it completes. */
  readonly finishedFile: string;
  readonly steps: number;
  /** What else decides the run (default configs, the starting weights' file), asked when it starts. */
  readonly identity: () => unknown;
}

const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
export const commandLine = (args: readonly string[]) => args.map(quote).join(' ');

export class BenchRuns {
  private done = 0;
  private readonly secondsPerStep = new Map<RunKind, number[]>();

  constructor(
    private readonly plan: readonly PlannedRun[],
    private readonly log: (line: string) => void,
  ) {}

  /** Runs, resumes or reuses `run`; returns its command as it would be typed (for the records). */
  async run(run: PlannedRun): Promise<string> {
    const fresh = [...run.args, '--logdir', run.logdir];
    const command = commandLine([path.relative(process.cwd(), TSX) || TSX, path.relative(process.cwd(), MAIN), ...fresh]);
    const recorded = path.join(run.logdir, RUN_ARGS_FILE);
    const record = JSON.stringify({ args: fresh, identity: run.identity() });
    const same = fs.existsSync(recorded) && fs.readFileSync(recorded, 'utf8') === record;
    const position = `[${this.done + 1}/${this.plan.length}] ${run.kind} ${run.label}`;
    if (same && fs.existsSync(path.join(run.logdir, run.finishedFile))) {
      this.log(`${position}: reusing the finished run in ${run.logdir}`);
      this.done++;
      return command;
    }
    const resumeAt = same ? listCheckpoints(checkpointDir(run.logdir)).pop()?.step : undefined;
    if (resumeAt === undefined) {
      fs.rmSync(run.logdir, { recursive: true, force: true });
      fs.mkdirSync(run.logdir, { recursive: true });
      fs.writeFileSync(recorded, record);
    }
    const args = resumeAt === undefined ? fresh : [run.args[0], '--resume', '--logdir', run.logdir];
    this.log(`${position}: ${resumeAt === undefined ? 'starting' : `resuming from step ${resumeAt}`} at ${new Date().toISOString()}: ${commandLine(['voco', ...args])}`);
    const started = Date.now();
    await runVoco(args, command);
    const seconds = (Date.now() - started) / 1000;
    const steps = run.steps - (resumeAt ?? 0);
    this.done++;
    if (steps > 0) this.secondsPerStep.set(run.kind, [...(this.secondsPerStep.get(run.kind) ?? []), seconds / steps]);
    const rate = steps > 0 ? `, ${steps} steps at ${(steps / seconds).toFixed(3)} steps/s (start-up and evaluations included)` : '';
    this.log(`${position}: done in ${formatDuration(seconds)}${rate}; ${this.eta()}`);
    return command;
  }

  /** The time the runs not yet done should take, at the rates measured so far. */
  private eta(): string {
    const left = this.plan.slice(this.done);
    if (!left.length) return 'all runs done';
    let seconds = 0;
    for (const r of left) {
      const rates = this.secondsPerStep.get(r.kind);
      if (!rates) return `ETA after the first ${r.kind} run`;
      seconds += (r.steps * rates.reduce((a, b) => a + b, 0)) / rates.length;
    }
    return `${left.length} run(s) left, benchmark ETA ${formatDuration(seconds)} (${new Date(Date.now() + seconds * 1000).toISOString()})`;
  }
}

/** Runs `voco args` to its end, its stderr passed on as it comes; throws with the tail of it when the run fails. */
export function runVoco(args: readonly string[], command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, [MAIN, ...args], { stdio: ['ignore', 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
      process.stderr.write(chunk);
    });
    child.once('error', (e) => reject(new BenchRunError(`${command}: cannot start: ${e.message}`)));
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else {
        const tail = stderr.trim().split('\n').slice(-3).join(' / ');
        reject(new BenchRunError(`${command}: exited with ${code ?? signal}: ${tail}`));
      }
    });
  });
}
