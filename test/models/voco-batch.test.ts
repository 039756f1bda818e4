import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BatchFileError, readVocoBatch } from '../../runtime/voco/grad';
import { writeSafetensors } from '../../io/weights/safetensors';
import { namedTensor } from '../../io/weights/tensor-map';

describe('VoCo batch files for voco grad', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-batch-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const cube = (name: string, rows: number, side = 32) => namedTensor(name, 'float32', [rows, 1, side, side, side], new Float32Array(rows * side ** 3));
  const labels = (b: number, sw: number, k: number) => namedTensor('labels', 'float32', [b, sw, k], new Float32Array(b * sw * k));

  test('the layout is read off the labels: batch, sw and base crops', () => {
    const file = path.join(tmp, 'good.safetensors');
    writeSafetensors(file, [cube('images', 4), cube('crops', 18), labels(2, 2, 9)]);
    expect(readVocoBatch(file)).toMatchObject({ batchSize: 2, swBatchSize: 2, baseCrops: 9, roi: 32 });
  });

  test.each([
    ['missing labels', [cube('images', 1), cube('crops', 9)], 'has no "labels" tensor (a VoCo batch holds images, crops and labels)'],
    ['crops that do not fit the labels', [cube('images', 1), cube('crops', 8), labels(1, 1, 9)], 'images [1, 1, 32, 32, 32] and crops [8, 1, 32, 32, 32] do not fit labels [1, 1, 9]'],
  ])('%s: one BatchFileError line naming the file', (_, tensors, problem) => {
    const file = path.join(tmp, 'bad.safetensors');
    writeSafetensors(file, tensors);
    expect(() => readVocoBatch(file)).toThrow(BatchFileError);
    expect(() => readVocoBatch(file)).toThrow(`${file}: ${problem}`);
  });
});
