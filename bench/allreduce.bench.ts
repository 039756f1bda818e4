/**
 * Gradient all-reduce across ranks on this machine against a training step, for the gradient counts of the tiny
 * (feature size 12) and B (feature size 48) VoCo models, and the scaling efficiency that follows.
 *
 * Run: npx tsx bench/allreduce.bench.ts [ranks=2] [reps=5] [stepMs=500,2000]
 * It starts itself under `mpirun -np ranks`; rank 0 prints a Markdown table. Times are the best of `reps` after a
 * warm-up. Efficiency = step / (step + gradient sync): the sync starts when the training graph has returned, so it
 * does not overlap with compute; `stepMs` is the single-rank step time to weigh it against (measure it with
 * `npm run train` on the target device).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Communicator } from '../runtime/distributed/communicator';
import { runRank } from '../runtime/distributed/failure';
import { GradientSync } from '../runtime/distributed/gradient-sync';
import { findMpirun, localMpirunArgs } from '../runtime/distributed/mpirun';
import { launchedByMpi, openCommunicator } from '../runtime/distributed/open';
import { readSafetensorsHeader } from '../io/weights/safetensors';

/** Tensors that receive gradients: backbone and student head (the teacher head is an EMA and gets none). */
const getsGradient = (name: string): boolean => /^(backbone|student)\./.test(name) && !name.endsWith('relative_position_index');
const REFERENCE = path.resolve(__dirname, '../../shared/reference/model');

interface GradientModel {
  readonly label: string;
  /** Length of every gradient tensor, in the model's order. */
  readonly lengths: readonly number[];
  readonly source: string;
}

/**
 * The gradient tensors of the tiny (feature size 12) and B (feature size 48) models, read from the reference
 * fixtures beside the repository when they are there; else the same totals split into 157 equal tensors.
 */
function gradientModels(): GradientModel[] {
  const volume = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
  const tinyFile = path.join(REFERENCE, 'tiny12_r64_b1', 'weights.safetensors');
  const shapesFile = path.join(REFERENCE, 'voco_state_dict_shapes.json');
  if (fs.existsSync(tinyFile) && fs.existsSync(shapesFile)) {
    const tiny = readSafetensorsHeader(tinyFile).entries.filter((e) => getsGradient(e.name)).map((e) => volume(e.shape));
    const shapes = JSON.parse(fs.readFileSync(shapesFile, 'utf8')) as Record<string, Record<string, number[]>>;
    const b = Object.entries(shapes.B).filter(([name]) => getsGradient(name)).map(([, shape]) => volume(shape));
    return [
      { label: 'tiny (feature size 12)', lengths: tiny, source: 'reference tensor shapes' },
      { label: 'B (feature size 48)', lengths: b, source: 'reference tensor shapes' },
    ];
  }
  const split = (total: number): number[] => Array.from({ length: 157 }, (_, t) => Math.floor((total * (t + 1)) / 157) - Math.floor((total * t) / 157));
  return [
    { label: 'tiny (feature size 12)', lengths: split(5_909_270), source: '157 equal tensors' },
    { label: 'B (feature size 48)', lengths: split(56_444_018), source: '157 equal tensors' },
  ];
}

const ranks = Number(process.argv[2] ?? 2);
const reps = Number(process.argv[3] ?? 5);
const stepMs = (process.argv[4] ?? '500,2000').split(',').map(Number);

function bestMs(comm: Communicator, run: () => void): number {
  run();
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    comm.barrier();
    const t0 = process.hrtime.bigint();
    run();
    // The slowest rank decides when the step can go on.
    const elapsed = new Float64Array([Number(process.hrtime.bigint() - t0) / 1e6]);
    comm.allreduceMax(elapsed);
    best = Math.min(best, elapsed[0]);
  }
  return best;
}

function measure(comm: Communicator): void {
  const rows: string[] = [];
  const models = gradientModels();
  for (const model of models) {
    const values = model.lengths.reduce((a, b) => a + b, 0);
    const grads = model.lengths.map((n, t) => new Float32Array(n).fill(0.001 * (t + 1)));
    const whole = new Float32Array(values);
    const raw = bestMs(comm, () => comm.allreduceSum(whole));
    const timings = [true, false].map((overlap) => {
      const sync = new GradientSync(comm, { overlap });
      const ms = bestMs(comm, () => sync.average(grads));
      sync.dispose();
      return ms;
    });
    const sync = Math.min(...timings);
    // Bus bandwidth as nccl-tests reports it: 2 (n - 1) / n of the buffer crosses each rank's link.
    const busGBs = ((2 * (comm.size - 1)) / comm.size) * values * 4 / (raw / 1e3) / 1e9;
    const efficiency = stepMs.map((s) => `${((100 * s) / (s + sync)).toFixed(1)} %`).join(' / ');
    rows.push(
      `| ${model.label} | ${model.lengths.length} | ${values.toLocaleString('en-US')} | ${(values * 4 / 2 ** 20).toFixed(1)} | ${raw.toFixed(1)} | ${busGBs.toFixed(2)} | ${timings[0].toFixed(1)} | ${timings[1].toFixed(1)} | ${efficiency} |`,
    );
  }
  if (comm.rank !== 0) return;
  console.log(`${comm.size} ranks, ${os.cpus()[0]?.model ?? 'unknown CPU'} (${os.cpus().length} cores), best of ${reps}, ${models[0].source}`);
  console.log(`| gradients | tensors | values | MiB | MPI_Allreduce ms (one buffer) | bus GB/s | GradientSync overlapped ms | GradientSync blocking ms | efficiency at step ${stepMs.join(' / ')} ms |`);
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) console.log(row);
}

if (launchedByMpi()) {
  const comm = openCommunicator();
  void runRank(comm, async () => measure(comm));
} else {
  const mpirun = findMpirun();
  if (!mpirun) {
    console.error('mpirun not found: install Open MPI (apt-get install -y openmpi-bin libopenmpi-dev)');
    process.exit(1);
  }
  const job = spawnSync(mpirun, localMpirunArgs(ranks, __filename, process.argv.slice(2)), { stdio: 'inherit' });
  process.exit(job.status ?? 1);
}
