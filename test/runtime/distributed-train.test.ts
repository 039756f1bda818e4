/**
 * `voco train` under `mpirun -np 2`: real ranks on this machine training the smallest VoCo model (feature size 12,
 * roi 32, one random crop per volume, one ORT thread) on four small phantom volumes. Skipped (with a note) where
 * Open MPI is not installed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_TRAIN_CONFIG } from '../../cli/train';
import { volumeCacheDir } from '../../data/cache/store';
import { createBatchLoader } from '../../data/loader/loader';
import { loaderSources, readDataEntries } from '../../data/loader/sources';
import { EpochSchedule, START_CURSOR } from '../../data/loader/schedule';
import { writePhantomDataset } from '../../data/phantom/dataset';
import { buildVocoGraph, EMA_PREFIX } from '../../graph/models/voco/model';
import { resolveVocoOptions } from '../../graph/models/voco/options';
import { findMpirun } from '../../runtime/distributed/mpirun';
import { MetricsLog } from '../../runtime/observe/metrics-log';
import { listCheckpoints, loadCheckpoint } from '../../io/checkpoint';
import { RunState } from '../../runtime/voco/pretrain';
import { stepFeeds } from '../../runtime/voco/task';
import { loadArtifacts } from '../../runtime/session/trainer';
import { finish, spawnMpiVoco, spawnVoco } from '../helpers/cli';
import { averagedStep, parameterGap } from '../helpers/data-parallel';

const mpirun = findMpirun();
if (!mpirun) console.warn('distributed training tests skipped: mpirun not found (install Open MPI: apt-get install -y openmpi-bin libopenmpi-dev)');
const describeMpi = mpirun ? describe : describe.skip;
// Each job is a few real steps per rank; on a loaded 2-core machine one can take minutes.
const JOB_TIMEOUT_MS = 480_000;

const SEED = 3;
const LR = 0.05;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-dist-train-'));
const cacheDir = path.join(work, 'cache');
const dataDir = path.join(work, 'phantoms');
const goodData = path.join(dataDir, 'dataset.json');
const badData = path.join(dataDir, 'one-bad.json');
// SGD with a constant rate: the first update is lr x gradient, so it shows the averaged gradients themselves (an
// Adam step of 1 is lr x sign(gradient)).
const OPTIONS = ['--preset', 'tiny', '--roi', '32', '--batch-size', '1', '--sw-batch-size', '1', '--threads', '1', '--held-out-batches', '0', '--workers', '1', '--cache-dir', cacheDir,
  '--seed', String(SEED), '--optimizer', 'sgd', '--lr-schedule', 'constant', '--lr', String(LR), '--checkpoint-every', '1', '--keep-checkpoints', '10'];

interface Run {
  code: number | null;
  stderr: string;
}

/** One `voco train` rank per argument list, all in one MPI job. */
function mpiTrain(ranks: string[][], timeoutSeconds = 400): Promise<Run> {
  return finish(spawnMpiVoco(mpirun!, ranks.map((args) => ['train', ...OPTIONS, ...args])), timeoutSeconds);
}

function train(args: string[], timeoutSeconds = 400): Promise<Run> {
  return finish(spawnVoco(['train', ...OPTIONS, ...args]), timeoutSeconds);
}

const checkpoints = (logdir: string) => listCheckpoints(path.join(logdir, 'checkpoints'));
const checkpointAt = (logdir: string, step: number) => loadCheckpoint<RunState>(checkpoints(logdir).find((c) => c.step === step)!.file);

/** Global entry `n` of the data stream as a cursor at `step`. */
function cursorAfter(entries: number, step: number, epochLength: number) {
  return { step, epoch: Math.floor(entries / epochLength), index: entries % epochLength };
}

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describeMpi('voco train under mpirun -np 2', () => {
  const shared = path.join(work, 'two-ranks');
  // Rank 1 gets a logdir of its own: as on a second machine without a shared file system, it must write nothing
  // there but the artifacts it needs.
  const rank1Dir = path.join(work, 'rank-1-only');
  let run: Run;

  beforeAll(async () => {
    writePhantomDataset(dataDir, { count: 4, seed: 11, phantom: { geometry: { inPlaneSize: [40, 48], slices: [20, 24] } } });
    run = await mpiTrain([['--data', goodData, '--logdir', shared, '--max-steps', '3', '--digest-every', '1'], ['--data', goodData, '--logdir', rank1Dir, '--max-steps', '3', '--digest-every', '1']]);
    if (run.code !== 0) throw new Error(`two-rank run failed (${run.code}):\n${run.stderr}`);
  }, JOB_TIMEOUT_MS);

  test('trains 3 steps with identical parameters on both ranks (digest compared after every step); only rank 0 writes', () => {
    expect(run.stderr).not.toMatch(/diverged/);
    expect(run.stderr.match(/data-parallel over 2 ranks: batch 1 per rank, 2 volumes per step/g)).toHaveLength(1);
    expect(run.stderr.match(/finished at step 3/g)).toHaveLength(1);
    expect(checkpoints(shared).map((c) => c.step)).toEqual([1, 2, 3]);
    const records = new MetricsLog(shared).read();
    expect(records.map((r) => r.step)).toEqual([1, 2, 3]);
    for (const r of records) expect(Number(r.allreduce)).toBeGreaterThanOrEqual(0);
    expect(fs.readdirSync(shared)).toEqual(expect.arrayContaining(['encoder.onnx', 'voco_weights.safetensors', 'loss.svg', 'metrics.jsonl']));
    expect(fs.readdirSync(rank1Dir)).toEqual(['artifacts']);
    // The data cursor counts global entries: 3 steps of 2 volumes.
    expect(checkpointAt(shared, 3).meta.cursor).toEqual(cursorAfter(6, 3, 4));
  });

  test('one step equals one process that averages the gradients of the two rank batches and applies SGD once', async () => {
    const config = { ...DEFAULT_TRAIN_CONFIG, roi: 32, batchSize: 1, swBatchSize: 1 };
    const vg = buildVocoGraph(resolveVocoOptions({ ...config, featureSize: config.featureSize }), 'train');
    const sources = loaderSources(readDataEntries(goodData, 'abdomen'));
    const feeds = await Promise.all([0, 1].map(async (rank) => {
      const share = { rank, size: 2 };
      const loader = createBatchLoader({ sources, cacheDir: volumeCacheDir(cacheDir), seed: SEED, batchSize: 1, swBatchSize: 1, voco: { roi: 32 }, workers: 0, share });
      const batch = await loader.next();
      await loader.close();
      return stepFeeds(vg, batch, SEED, 0, share);
    }));

    const trainer = await loadArtifacts(path.join(shared, 'artifacts'), { threads: 1, seed: SEED });
    const { before, result, other, ownGradientGap } = await averagedStep(trainer, [feeds[0], feeds[1]], LR);
    for (const [name, value] of Object.entries(result.extras)) {
      if (name.startsWith(EMA_PREFIX)) trainer.parameters.set(name.slice(EMA_PREFIX.length), value.data as Float32Array);
    }

    const { error, moved } = parameterGap(checkpointAt(shared, 1), trainer, before);
    expect(error).toBeLessThan(1e-6);
    // Not a vacuous match: the step moved the parameters, and rank 0's gradient alone would have moved them elsewhere.
    expect(moved).toBeGreaterThan(1000 * error);
    expect(LR * ownGradientGap).toBeGreaterThan(100 * error + 1e-6);
    const logged = Number(new MetricsLog(shared).read()[0].loss);
    expect(logged).toBeCloseTo((result.loss + other.loss) / 2, 5);
    await trainer.release();
  }, JOB_TIMEOUT_MS);

  test('a rank that dies takes the job down with its reason; --resume continues with one process where it stopped', async () => {
    // Rank 1 reads global entries 1, 3, 5, ... of the stream: break the file of the first entry it reads from its
    // third step on that it has not read before, in rank 1's copy of the dataset list only.
    const schedule = new EpochSchedule([1, 1, 1, 1], SEED);
    const read = (step: number) => schedule.sourceAt(START_CURSOR, 2 * step + 1);
    const failStep = [2, 3, 4, 5].find((s) => !Array.from({ length: s }, (_, t) => read(t)).includes(read(s)))!;
    expect(failStep).toBeDefined();
    const list = JSON.parse(fs.readFileSync(goodData, 'utf8')) as { training: { image: string }[] };
    list.training[read(failStep)].image = 'broken.nii.gz';
    fs.writeFileSync(path.join(dataDir, 'broken.nii.gz'), Buffer.alloc(300, 7));
    fs.writeFileSync(badData, JSON.stringify(list));

    const logdir = path.join(work, 'failing');
    fs.cpSync(path.join(shared, 'artifacts'), path.join(logdir, 'artifacts'), { recursive: true });
    const common = ['--logdir', logdir, '--max-steps', '6', '--on-bad-file', 'fail'];
    const started = Date.now();
    const failed = await mpiTrain([['--data', goodData, ...common], ['--data', badData, ...common]]);
    expect(failed.code).not.toBe(0);
    expect(failed.code).not.toBeNull(); // null: killed by the timeout, i.e. the job hung
    expect(failed.stderr).toMatch(/rank 1 failed: .*broken\.nii\.gz: .*; aborting the job/);
    expect((Date.now() - started) / 1000).toBeLessThan(380);
    const saved = checkpoints(logdir).map((c) => c.step);
    expect([failStep - 1, failStep]).toContain(saved[saved.length - 1]);

    // One process, batch 1: the global batch halves, and the cursor goes on from the global entries already read.
    const resumed = await train(['--logdir', logdir, '--resume', '--max-steps', String(failStep + 2)]);
    expect(resumed.code).toBe(0);
    const from = Number(/resuming from step (\d+)/.exec(resumed.stderr)?.[1]);
    expect(from).toBe(saved[saved.length - 1]);
    const end = checkpointAt(logdir, failStep + 2);
    expect(end.meta.cursor).toEqual(cursorAfter(2 * from + (failStep + 2 - from), failStep + 2, 4));
    expect(new MetricsLog(logdir).read().map((r) => r.step)).toEqual(Array.from({ length: failStep + 2 }, (_, i) => i + 1));
  }, 2 * JOB_TIMEOUT_MS);
});
