import { spawnSync } from 'child_process';
import { NamedTensor, namedTensor, tensorBytes } from '../../io/weights/tensor-map';

export { REFERENCE } from '../helpers/reference';

/** One tensor of every dtype, including a scalar and an empty tensor. */
export function everyDtype(): NamedTensor[] {
  return [
    namedTensor('f32', 'float32', [2, 3], Float32Array.from([1.5, -2, 3.25, 0, -0, 1e-30])),
    namedTensor('f16', 'float16', [3], Uint16Array.from([0x3c00, 0xc000, 0x0001])),
    namedTensor('bf16', 'bfloat16', [2], Uint16Array.from([0x3f80, 0xc040])),
    namedTensor('f64', 'float64', [2], Float64Array.from([Math.PI, -1e300])),
    namedTensor('i64', 'int64', [2, 2], BigInt64Array.from([1n, -2n, 2n ** 40n, -(2n ** 62n)])),
    namedTensor('i32', 'int32', [1], Int32Array.from([-7])),
    namedTensor('u8', 'uint8', [2], Uint8Array.from([0, 255])),
    namedTensor('flag', 'bool', [3], Uint8Array.from([1, 0, 1])),
    namedTensor('scalar', 'float32', [], Float32Array.from([42])),
    namedTensor('empty', 'float32', [0, 3], new Float32Array(0)),
  ];
}

export function expectSameTensors(actual: Iterable<NamedTensor>, expected: Iterable<NamedTensor>): void {
  const describe = (ts: Iterable<NamedTensor>) =>
    [...ts].map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape], bytes: Buffer.from(tensorBytes(t)).toString('hex') }));
  expect(describe(actual)).toEqual(describe(expected));
}

/** A Python with torch (Debian's python3-torch), or undefined: tests needing it then skip with a note. */
export const python = ['python3', '/usr/bin/python3'].find((p) => spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);

export const runPython = (script: string, ...args: string[]): string => {
  const run = spawnSync(python as string, ['-c', script, ...args], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`python failed: ${run.stderr}`);
  return run.stdout;
};

/** A test that needs PyTorch: without it, it logs why it skipped and passes. */
export const withTorch = (name: string, body: () => void | Promise<void>, timeout?: number) =>
  test(
    name,
    async () => {
      if (!python) {
        console.log(`skipped "${name}": no Python with torch (apt-get install python3-torch to run it)`);
        return;
      }
      await body();
    },
    timeout,
  );
