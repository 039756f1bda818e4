import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CheckpointError, latestCheckpoint, listCheckpoints, loadCheckpoint, saveCheckpoint } from '../../io/checkpoint';
import { NamedTensor, TensorMap } from '../../io/weights/tensor-map';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'voco-ckpt-'));

function map(...tensors: NamedTensor[]): TensorMap {
  return new Map(tensors.map((t) => [t.name, t]));
}

function sample(step: number) {
  return {
    step,
    groups: new Map([
      ['parameters', map({ name: 'a.weight', dtype: 'float32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, step]) })],
      ['optimizer', map({ name: 'a.weight.exp_avg', dtype: 'float32', shape: [2, 3], data: new Float32Array(6).fill(0.5) })],
    ]),
    meta: { rng: [1, 2, 3, 4], cursor: { epoch: 0, index: step } },
  };
}

describe('training checkpoints', () => {
  test('write, read back every group and the metadata', () => {
    const dir = tmp();
    const file = saveCheckpoint(dir, sample(7), 3);
    const back = loadCheckpoint<ReturnType<typeof sample>['meta']>(file);
    expect(back.step).toBe(7);
    expect(back.meta).toEqual({ rng: [1, 2, 3, 4], cursor: { epoch: 0, index: 7 } });
    expect(Array.from(back.groups.get('parameters')!.get('a.weight')!.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 7]);
    expect(back.groups.get('optimizer')!.get('a.weight.exp_avg')!.shape).toEqual([2, 3]);
  });

  test('keeps the newest K and resumes from the newest whole one', () => {
    const dir = tmp();
    for (const step of [10, 20, 30, 40]) saveCheckpoint(dir, sample(step), 2);
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([30, 40]);
    const newest = listCheckpoints(dir)[1].file;
    fs.truncateSync(newest, fs.statSync(newest).size - 5);
    expect(latestCheckpoint(dir)).toBe(listCheckpoints(dir)[0].file);
    expect(() => loadCheckpoint(newest)).toThrow(CheckpointError);
  });

  test('a process killed while writing leaves the previous checkpoint as the latest', async () => {
    const dir = tmp();
    saveCheckpoint(dir, sample(1), 5);
    const script = `
      const { saveCheckpoint } = require(${JSON.stringify(path.resolve('io/checkpoint.ts'))});
      const big = new Float32Array(64 * 1024 * 1024);
      process.stdout.write('writing\\n');
      saveCheckpoint(${JSON.stringify(dir)}, { step: 2, groups: new Map([['parameters', new Map([['w', { name: 'w', dtype: 'float32', shape: [big.length], data: big }]])]]), meta: {} }, 5);
      process.stdout.write('done\\n');`;
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    await new Promise((r) => setTimeout(r, 150));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const latest = latestCheckpoint(dir)!;
    // Either the kill came before the rename (step 1 is latest) or after (step 2 is whole): never a torn file.
    expect(() => loadCheckpoint(latest)).not.toThrow();
    expect([1, 2]).toContain(loadCheckpoint(latest).step);
    expect(listCheckpoints(dir).every((c) => c.step === 1 || c.step === 2)).toBe(true);
  });
});
