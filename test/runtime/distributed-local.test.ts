/**
 * The distributed layer without a job: the single-process communicator, the error when MPI is asked for but
 * missing, the sampler rules and the failure message. None of this needs Open MPI.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { EpochSchedule, START_CURSOR } from '../../data/loader/schedule';
import { broadcastJson, meanOverRanks, SingleProcess } from '../../runtime/distributed/communicator';
import { DataParallel } from '../../runtime/distributed/data-parallel';
import { MpiUnavailableError } from '../../runtime/distributed/errors';
import { failureMessage } from '../../runtime/distributed/failure';
import { checkParametersAgree, GradientSync, parameterDigest } from '../../runtime/distributed/gradient-sync';
import { launchedByMpi, openCommunicator } from '../../runtime/distributed/open';
import { distributedSamplerIndices, epochOrder, rankBatch, rankOffsets } from '../../runtime/distributed/sampler';
import { UserError } from '../../common/user-error';

describe('opening the communicator', () => {
  test('outside mpirun: a single process, and neither koffi nor libmpi is loaded', () => {
    const root = join(__dirname, '..', '..');
    const script = [
      "const { openCommunicator } = require('./runtime/distributed');",
      'const c = openCommunicator();',
      "const loaded = Object.keys(require.cache).filter((k) => /koffi|distributed\\/mpi/.test(k));",
      'console.log(JSON.stringify({ rank: c.rank, size: c.size, distributed: c.distributed, loaded }));',
    ].join('\n');
    const env = { ...process.env };
    for (const name of ['OMPI_COMM_WORLD_SIZE', 'PMIX_RANK', 'PMI_RANK']) delete env[name];
    const out = execFileSync(process.execPath, ['--require', require.resolve('tsx/cjs'), '-e', script], { cwd: root, env, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ rank: 0, size: 1, distributed: false, loaded: [] });
  });

  test('launcher detection', () => {
    expect(launchedByMpi({})).toBe(false);
    expect(launchedByMpi({ OMPI_COMM_WORLD_SIZE: '2' })).toBe(true);
    expect(launchedByMpi({ PMIX_RANK: '0' })).toBe(true);
    expect(launchedByMpi({ PMI_RANK: '1' })).toBe(true);
  });

  test('MPI asked for but the library is missing: one line naming the packages', () => {
    const open = (): unknown => openCommunicator({ distributed: true, library: '/nonexistent/libmpi.so.40' });
    expect(open).toThrow(MpiUnavailableError);
    expect(open).toThrow(/^distributed training needs Open MPI, but \/nonexistent\/libmpi\.so\.40 cannot be loaded \(.*\); install it: apt-get install openmpi-bin libopenmpi-dev$/);
    expect(open).toThrow(UserError);
  });

  test('a library that is not Open MPI is refused by name', () => {
    const open = (): unknown => openCommunicator({ env: { OMPI_COMM_WORLD_SIZE: '1' }, library: 'libc.so.6' });
    expect(open).toThrow('libc.so.6 cannot be loaded (it is not Open MPI: it lacks ompi_mpi_comm_world)');
  });
});

describe('single process', () => {
  const comm = new SingleProcess();

  test('collectives leave the data as it is', () => {
    const g = [new Float32Array([1, 2, 3]), new Float64Array([4])];
    new GradientSync(comm).average(g);
    expect([...g[0]]).toEqual([1, 2, 3]);
    expect([...g[1]]).toEqual([4]);
    expect(broadcastJson(comm, { a: 1 })).toEqual({ a: 1 });
    expect(meanOverRanks(comm, [2.5, -1])).toEqual([2.5, -1]);
    expect([...comm.allgather(new Float64Array([7, 8]))]).toEqual([7, 8]);
    expect(() => checkParametersAgree(comm, g, 1)).not.toThrow();
    const dp = new DataParallel(comm);
    expect([dp.isRoot, dp.anyRank(true), dp.anyRank(false)]).toEqual([true, true, false]);
    expect(dp.mean([3, 4])).toEqual([3, 4]);
  });
});

describe('parameter digest', () => {
  test('sees a one-ulp change and the order of values', () => {
    const a = Float32Array.from({ length: 1000 }, (_, i) => Math.cos(i));
    const base = parameterDigest([a]);
    expect(parameterDigest([a.slice()])).toEqual(base);
    const nudged = a.slice();
    nudged[500] = new Float32Array(new Uint32Array([new Uint32Array(nudged.buffer)[500] + 1]).buffer)[0];
    expect(parameterDigest([nudged]).hash).not.toBe(base.hash);
    const swapped = a.slice();
    [swapped[1], swapped[2]] = [swapped[2], swapped[1]];
    expect(parameterDigest([swapped]).hash).not.toBe(base.hash);
    expect(base.sum).toBeCloseTo(a.reduce((s, v) => s + v, 0), 10);
  });
});

describe('DistributedSampler rule', () => {
  // Expected lists from torch.utils.data.DistributedSampler(shuffle=False, drop_last=False): the order padded by
  // repeating it from the start up to ceil(n / world) * world, then indices[rank::world].
  test.each([
    [10, 4, [[0, 4, 8], [1, 5, 9], [2, 6, 0], [3, 7, 1]]],
    [8, 4, [[0, 4], [1, 5], [2, 6], [3, 7]]],
    [3, 8, [[0], [1], [2], [0], [1], [2], [0], [1]]],
    [5, 2, [[0, 2, 4], [1, 3, 0]]],
    [7, 1, [[0, 1, 2, 3, 4, 5, 6]]],
  ])('unshuffled, %i entries over %i ranks', (n, world, expected) => {
    const got = Array.from({ length: world }, (_, rank) => [...distributedSamplerIndices(n, { rank, size: world }, { epoch: 0, seed: 0, shuffle: false })]);
    expect(got).toEqual(expected);
  });

  test('shuffled: the same order on every rank for a seed and epoch, another order the next epoch', () => {
    const n = 23;
    const world = 4;
    const share = (epoch: number, seed = 7): number[][] =>
      Array.from({ length: world }, (_, rank) => [...distributedSamplerIndices(n, { rank, size: world }, { epoch, seed })]);
    expect(share(3)).toEqual(share(3));
    expect(share(4)).not.toEqual(share(3));
    expect(share(3, 8)).not.toEqual(share(3));
    // Interleaving the ranks back gives the epoch's permutation padded from its start.
    const order = [...epochOrder(n, 7, 3)];
    const padded = [...order, ...order].slice(0, Math.ceil(n / world) * world);
    const ranks = share(3);
    const interleaved = padded.map((_, p) => ranks[p % world][Math.floor(p / world)]);
    expect(interleaved).toEqual(padded);
    expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  test('bad ranks and lengths are refused', () => {
    expect(() => distributedSamplerIndices(5, { rank: 2, size: 2 }, { epoch: 0, seed: 0 })).toThrow('rank 2 of 2 is not a valid rank');
    expect(() => distributedSamplerIndices(0, { rank: 0, size: 2 }, { epoch: 0, seed: 0 })).toThrow('dataset length');
    expect(() => rankOffsets(0, { rank: 0, size: 2 })).toThrow('batch size');
  });
});

describe('global data stream', () => {
  const schedule = new EpochSchedule([1, 2, 1, 1, 3], 5);

  /** Entries each step reads, rank by rank, for `steps` steps of `world` ranks from `cursor`. */
  function run(world: number, localBatch: number, steps: number, cursor = START_CURSOR) {
    const reads: number[][][] = [];
    for (let s = 0; s < steps; s++) {
      const batches = Array.from({ length: world }, (_, rank) => rankBatch(schedule, cursor, localBatch, { rank, size: world }));
      for (const b of batches) expect(b.next).toEqual(batches[0].next);
      reads.push(batches.map((b) => b.sources));
      cursor = batches[0].next;
    }
    return { reads, cursor };
  }

  test('two ranks of batch b read what one process of batch 2b reads, strided', () => {
    const two = run(2, 3, 5);
    const one = run(1, 6, 5);
    for (let s = 0; s < 5; s++) {
      const [global] = one.reads[s];
      expect(two.reads[s][0]).toEqual([global[0], global[2], global[4]]);
      expect(two.reads[s][1]).toEqual([global[1], global[3], global[5]]);
    }
    expect(two.cursor).toEqual(one.cursor);
    expect(two.cursor).toEqual({ step: 5, epoch: 3, index: 6 });
  });

  test('a cursor saved with 4 ranks resumes with 2 at the same place in the data', () => {
    const first = run(4, 1, 3);
    const resumed = run(2, 2, 2, first.cursor);
    const straight = run(1, 4, 5);
    expect(resumed.reads.map((step) => [step[0][0], step[1][0], step[0][1], step[1][1]])).toEqual(straight.reads.slice(3).map((s) => s[0]));
    expect(resumed.cursor).toEqual(straight.cursor);
  });

  test('offsets follow the DistributedSampler striding', () => {
    expect(rankOffsets(3, { rank: 1, size: 4 })).toEqual([1, 5, 9]);
  });
});

describe('failure message', () => {
  test('a user mistake is one line; an internal error adds its stack below', () => {
    expect(failureMessage(1, new UserError('volume.nii.gz: not a NIfTI file'))).toBe('rank 1 failed: volume.nii.gz: not a NIfTI file; aborting the job');
    const lines = failureMessage(3, new Error('boom')).split('\n');
    expect(lines[0]).toBe('rank 3 failed: boom; aborting the job');
    expect(lines[1]).toBe('Error: boom');
  });
});
