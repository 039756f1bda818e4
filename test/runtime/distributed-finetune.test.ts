/**
 * `voco finetune` under `mpirun -np 2`: real ranks on this machine fine-tuning the smallest SwinUNETR (feature size
 * 12, roi 32, one crop per volume, one ORT thread) on two small labelled phantoms, validating on a third; and one
 * process with the same global batch. Skipped (with a note) where Open MPI is not installed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { volumeCacheDir } from '../../data/cache/store';
import { loadSegmentationDatalist } from '../../data/datalist';
import { createSegmentationLoader } from '../../data/loader/loader';
import type { RankShare } from '../../data/loader/share';
import { DATASET_JSON, writePhantomDataset } from '../../data/phantom/dataset';
import { IMAGE_INPUT, LABEL_INPUT } from '../../graph/models/swinunetr/model';
import { listCheckpoints, loadCheckpoint } from '../../io/checkpoint';
import { findMpirun } from '../../runtime/distributed/mpirun';
import { finetunePairSources } from '../../runtime/finetune/data';
import type { FinetuneRunState } from '../../runtime/finetune/finetune';
import { MetricsLog } from '../../runtime/observe/metrics-log';
import { loadArtifacts } from '../../runtime/session/trainer';
import { finish, spawnMpiVoco, spawnVoco } from '../helpers/cli';
import { averagedStep, parameterGap } from '../helpers/data-parallel';

const mpirun = findMpirun();
if (!mpirun) console.warn('distributed fine-tuning tests skipped: mpirun not found (install Open MPI: apt-get install -y openmpi-bin libopenmpi-dev)');
const describeMpi = mpirun ? describe : describe.skip;
// Each job builds the graphs and takes a few real steps and validations; on a loaded 2-core machine that is minutes.
const JOB_TIMEOUT_MS = 300_000;

const SEED = 3;
const LR = 1e-3;
const STEPS = 3;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-dist-finetune-'));
const cacheDir = path.join(work, 'cache');
const phantoms = path.join(work, 'phantoms');
const datalist = path.join(phantoms, DATASET_JSON);
// A constant rate from the first step, so that step 1 is one AdamW update at LR.
const OPTIONS = ['--data', datalist, '--cache-dir', cacheDir, '--preset', 'tiny', '--roi', '32', '--crops', '1', '--threads', '1', '--workers', '1', '--sw-batch-size', '2',
  '--seed', String(SEED), '--lr-schedule', 'constant', '--warmup-steps', '0', '--lr', String(LR), '--max-steps', String(STEPS), '--val-every', '2', '--checkpoint-every', '1', '--keep-checkpoints', '10'];

const PROCESS_TIMEOUT_S = 280;

const checkpointAt = (logdir: string, step: number) => loadCheckpoint<FinetuneRunState>(listCheckpoints(path.join(logdir, 'checkpoints')).find((c) => c.step === step)!.file);
const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const losses = (logdir: string) => new MetricsLog(logdir).read().filter((r) => 'loss' in r).map((r) => Number(r.loss));

/** The batch of step 0 (`share` of it) as the run's loader builds it, as training-graph feeds. */
async function firstBatch(batchSize: number, share?: RankShare): Promise<Record<string, Float32Array>> {
  const sources = finetunePairSources(loadSegmentationDatalist(datalist).training, undefined);
  const loader = createSegmentationLoader({ sources, cacheDir: volumeCacheDir(cacheDir), seed: SEED, batchSize, share, sample: { roi: 32, numSamples: 1 }, workers: 0 });
  const batch = await loader.next();
  await loader.close();
  return { [IMAGE_INPUT]: batch.image, [LABEL_INPUT]: batch.label };
}

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describeMpi('voco finetune under mpirun -np 2', () => {
  const shared = path.join(work, 'two-ranks');
  // Rank 1 gets a logdir of its own: as on a second machine without a shared file system, it must write nothing
  // there but the artifacts it needs.
  const rank1Dir = path.join(work, 'rank-1-only');
  const single = path.join(work, 'one-process');
  let run: { code: number | null; stderr: string };

  beforeAll(async () => {
    writePhantomDataset(phantoms, { count: 3, validation: 1, seed: 5, phantom: { geometry: { inPlaneSize: [40, 48], slices: [16, 20] } } });
    const rank = (logdir: string) => ['finetune', ...OPTIONS, '--logdir', logdir, '--digest-every', '1'];
    run = await finish(spawnMpiVoco(mpirun!, [rank(shared), rank(rank1Dir)]), PROCESS_TIMEOUT_S);
    if (run.code !== 0) throw new Error(`two-rank run failed (${run.code}):\n${run.stderr}`);
  }, JOB_TIMEOUT_MS);

  test('runs with identical parameters on both ranks (digest compared after every step); metrics, validation and files written once, by rank 0', () => {
    expect(run.stderr).not.toMatch(/diverged/);
    expect(run.stderr.match(/data-parallel over 2 ranks: batch 1 volume\(s\) x 1 crops per rank, 2 volumes per step/g)).toHaveLength(1);
    expect(run.stderr.match(/finished at step 3/g)).toHaveLength(1);
    const records = new MetricsLog(shared).read();
    expect(records.filter((r) => 'loss' in r).map((r) => r.step)).toEqual([1, 2, 3]);
    expect(records.filter((r) => 'val_dice_mean' in r).map((r) => r.step)).toEqual([0, 2, 3]);
    for (const r of records.filter((r) => 'loss' in r)) expect(Number(r.allreduce)).toBeGreaterThanOrEqual(0);
    expect(fs.readdirSync(shared).filter((f) => f.startsWith('events.out.tfevents'))).toHaveLength(1);
    expect(fs.readdirSync(shared)).toEqual(expect.arrayContaining(['best.ckpt', 'segmenter.onnx', 'loss.svg', 'dice.svg', 'metrics.jsonl']));
    expect(fs.readdirSync(rank1Dir)).toEqual(['artifacts']);
    expect(listCheckpoints(path.join(shared, 'checkpoints')).map((c) => c.step)).toEqual([1, 2, 3]);
    // The data cursor counts global entries: 3 steps of 2 volumes, over an epoch of 2.
    expect(checkpointAt(shared, 3).meta.cursor).toEqual({ step: 3, epoch: 3, index: 0 });
  });

  test('step 1 equals one process that averages the gradients of the two rank batches and applies AdamW once', async () => {
    const feeds = await Promise.all([0, 1].map((rank) => firstBatch(1, { rank, size: 2 })));
    const trainer = await loadArtifacts(path.join(shared, 'artifacts'), { threads: 1, seed: SEED });
    const { before, result, other, ownGradientGap, largestGradient } = await averagedStep(trainer, [feeds[0], feeds[1]], LR);
    const { error, moved } = parameterGap(checkpointAt(shared, 1), trainer, before);
    await trainer.release();
    expect(error).toBeLessThan(1e-6);
    // Not a vacuous match: the step moved the parameters (AdamW's first step: about LR), and rank 0's gradient
    // alone is another gradient.
    expect(moved).toBeGreaterThan(100 * error + LR / 2);
    expect(ownGradientGap).toBeGreaterThan(0.01 * largestGradient);
    expect(losses(shared)[0]).toBeCloseTo((result.loss + other.loss) / 2, 5);
  }, JOB_TIMEOUT_MS);

  test('one process with the same global batch (batch 2) sees the same crops, losses and mean gradient', async () => {
    const done = await finish(spawnVoco(['finetune', ...OPTIONS, '--batch-size', '2', '--logdir', single]), PROCESS_TIMEOUT_S);
    expect(done.code).toBe(0);
    // The loss is a mean of per-crop terms (Dice per crop and class, cross-entropy per voxel) and SwinUNETR has no
    // batch statistics or dropout, so two ranks x 1 and one process x 2 compute the same loss and, averaged, the
    // same gradient, up to float32 rounding.
    const [two, one] = [losses(shared), losses(single)];
    expect(one).toHaveLength(STEPS);
    for (let s = 0; s < STEPS; s++) expect(Math.abs(one[s] - two[s])).toBeLessThan(1e-5 * two[s]);

    const [rank0, rank1, both] = await Promise.all([firstBatch(1, { rank: 0, size: 2 }), firstBatch(1, { rank: 1, size: 2 }), firstBatch(2)]);
    // The global batch is the two rank batches one after the other, crop for crop.
    for (const name of [IMAGE_INPUT, LABEL_INPUT]) expect(bytes(both[name]).equals(Buffer.concat([bytes(rank0[name]), bytes(rank1[name])]))).toBe(true);
    const perRank = await loadArtifacts(path.join(shared, 'artifacts'), { threads: 1, seed: SEED });
    const [g0, g1] = [(await perRank.computeGradients(rank0)).gradients, (await perRank.computeGradients(rank1)).gradients];
    const whole = await loadArtifacts(path.join(single, 'artifacts'), { threads: 1, seed: SEED });
    const g = (await whole.computeGradients(both)).gradients;
    let diff = 0;
    let norm = 0;
    for (const [name, value] of g) {
      const [a, b] = [g0.get(name)!, g1.get(name)!];
      for (let i = 0; i < value.length; i++) {
        const mean = (a[i] + b[i]) / 2;
        diff += (value[i] - mean) ** 2;
        norm += mean ** 2;
      }
    }
    await Promise.all([perRank.release(), whole.release()]);
    expect(norm).toBeGreaterThan(0);
    expect(Math.sqrt(diff / norm)).toBeLessThan(1e-5);
  }, JOB_TIMEOUT_MS);
});
