import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { WeightFileError } from '../../io/weights/errors';
import { readWeightsFile } from '../../io/weights/load-weights';
import { readTorchCheckpoint } from '../../io/weights/torch-reader';

/**
 * MONAI/upstream fine-tuning checkpoints carry numpy scalars (`best_acc`) and arrays beside the state dict. The
 * committed files were written by PyTorch 1.13 / numpy 1.24 (test/fixtures/weights/make_numpy_checkpoints.py);
 * where Debian's python3 has torch, fresh ones are written and read too.
 */
const FIXTURES = path.join(__dirname, '../fixtures/weights');
const SCRIPT = path.join(FIXTURES, 'make_numpy_checkpoints.py');
const PYTHON = '/usr/bin/python3';
const haveTorch = fs.existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;

function checkMetadataFile(file: string): void {
  const root = readTorchCheckpoint(file) as Map<string, unknown>;
  expect(root.get('epoch')).toBe(3);
  expect(root.get('best_acc')).toBe(0.81);
  const meta = root.get('metadata') as Map<string, unknown>;
  expect(meta.get('f32')).toBe(1.5);
  expect(meta.get('i64')).toBe(-7);
  expect(meta.get('flag')).toBe(true);
  const dice = meta.get('dice') as { dtype: string; shape: number[]; data: Float32Array };
  expect([dice.dtype, dice.shape, [...dice.data]]).toEqual(['float32', [2, 2], [0.25, 0.5, 0.75, 1]]);
  const steps = meta.get('steps') as { dtype: string; shape: number[]; data: BigInt64Array };
  expect([steps.dtype, steps.shape, [...steps.data]]).toEqual(['int64', [3], [1n, 2n, 3n]]);

  const tensors = readWeightsFile(file);
  expect([...tensors.keys()]).toEqual(['swinViT.patch_embed.proj.weight', 'out.conv.conv.bias', 'swinViT.layers1.0.blocks.0.attn.relative_position_index']);
  const patch = tensors.get('swinViT.patch_embed.proj.weight')!;
  expect(patch.shape).toEqual([6, 1, 2, 2, 2]);
  expect(Array.from(patch.data as Float32Array)).toEqual(Array.from({ length: 48 }, (_, i) => Math.fround(i / 10)));
  expect([...(tensors.get('out.conv.conv.bias')!.data as Float32Array)]).toEqual([0.5, -1, 2]);
}

function checkObjectArrayRefused(file: string): void {
  expect(() => readTorchCheckpoint(file)).toThrow(WeightFileError);
  expect(() => readTorchCheckpoint(file)).toThrow(`${file}: numpy dtype O8 is not supported (numbers and booleans only)`);
}

describe('numpy values in checkpoint metadata are decoded as data', () => {
  test('the committed numpy-metadata checkpoint: best_acc 0.81, epoch 3, numpy scalars and arrays, the state dict', () => {
    checkMetadataFile(path.join(FIXTURES, 'numpy_metadata.pt'));
  });

  test('an object array (arbitrary pickled objects) is still refused', () => {
    checkObjectArrayRefused(path.join(FIXTURES, 'numpy_object_array.pt'));
  });

  (haveTorch ? test : test.skip)(
    `files written now by ${PYTHON} (torch) read the same${haveTorch ? '' : ` — skipped: ${PYTHON} has no torch`}`,
    () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'numpy-pt-'));
      try {
        const run = spawnSync(PYTHON, [SCRIPT, dir], { encoding: 'utf8' });
        expect(run.stderr).toBe('');
        checkMetadataFile(path.join(dir, 'numpy_metadata.pt'));
        checkObjectArrayRefused(path.join(dir, 'numpy_object_array.pt'));
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    120_000,
  );
});
