import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BadVolumeError } from '../../data/nifti/errors';
import { writeNifti } from '../../data/nifti/write';
import { LabelGridError, loadLabelMap } from '../../data/segmentation/label-map';
import { preprocessImageForInference, preprocessPair } from '../../data/segmentation/preprocess';
import { invertLabels } from '../../data/transforms/invert';
import type { Volume } from '../../data/volume';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-seg-pairs-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const shape: [number, number, number] = [8, 7, 6];
const count = shape[0] * shape[1] * shape[2];
/** RAS, 0.625 x 0.625 x 2.5 mm: exactly half the chest family's 1.25 x 1.25 x 5 mm along every axis. */
const affine = [0.625, 0, 0, -10, 0, 0.625, 0, 4, 0, 0, 2.5, 30, 0, 0, 0, 1];

function file(name: string, data: Float32Array, options: { datatype?: 'float32' | 'int16' | 'uint8'; shape?: [number, number, number] } = {}): string {
  const out = path.join(tmp, name);
  writeNifti(out, { data, shape: options.shape ?? shape, affine }, { datatype: options.datatype ?? 'int16' });
  return out;
}

let seed = 12345;
const labels = Float32Array.from({ length: count }, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) >> 16) % 4);
const image = file('ct.nii', new Float32Array(count).fill(100));
const label = file('label.nii.gz', labels, { datatype: 'uint8' });

/** Nearest index with exact .5 ties going up and border clamping. */
const nearestUp = (c: number, n: number) => Math.min(Math.max(Math.floor(c + 0.5), 0), n - 1);

describe('segmentation chain on synthetic pairs', () => {
  test('chest family: the label takes every other voxel onto the image grid, and the inversion takes ties up', () => {
    let spaced: Volume | undefined;
    const pair = preprocessPair(image, label, 'chest', (step, _image, l) => {
      if (step === 'spacing') spaced = l;
    });
    // (n - 1) / 2 + 1 rounded half to even: 8 -> 4, 7 -> 4, 6 -> 4 (3.5 -> 4).
    expect(pair.image.shape).toEqual([4, 4, 4]);
    expect(pair.label.shape).toEqual(pair.image.shape);
    expect(pair.label.affine).toEqual(pair.image.affine);
    expect(pair.record.crop).toEqual({ start: [0, 0, 0], end: [4, 4, 4] });
    const at = (x: number, y: number, z: number) => labels[(x * shape[1] + y) * shape[2] + z];
    const m = pair.label.shape;
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) for (let k = 0; k < 4; k++) {
      expect(spaced!.data[(i * m[1] + j) * m[2] + k]).toBe(at(Math.min(2 * i, 7), Math.min(2 * j, 6), Math.min(2 * k, 5)));
    }
    const inverted = invertLabels(pair.label, pair.record);
    expect(inverted.shape).toEqual(shape);
    expect(inverted.affine).toEqual(affine);
    // Original voxel j reads the 1.25 mm grid at j / 2 (an exact tie for odd j).
    for (let x = 0; x < shape[0]; x++) for (let y = 0; y < shape[1]; y++) for (let z = 0; z < shape[2]; z++) {
      const [i, j, k] = [nearestUp(x / 2, 4), nearestUp(y / 2, 4), nearestUp(z / 2, 4)];
      expect(inverted.data[(x * shape[1] + y) * shape[2] + z]).toBe(pair.label.data[(i * 4 + j) * 4 + k]);
    }
  });

  test('a label map that is not class indices is refused, naming the file', () => {
    const half = file('half.nii', labels.map((v) => v + 0.5), { datatype: 'float32' });
    const negative = file('negative.nii', labels.map((v) => -v), { datatype: 'int16' });
    for (const bad of [half, negative]) {
      expect(() => loadLabelMap(bad)).toThrow(BadVolumeError);
      expect(() => loadLabelMap(bad)).toThrow(new RegExp(`^${bad}: not a label map: voxel value -?[0-9.]+ is not a class index`));
    }
    expect(loadLabelMap(label).maxLabel).toBe(3);
  });

  test('a label on another grid is a one-line LabelGridError naming both files', () => {
    const small = file('small.nii', new Float32Array(8 * 7 * 5), { shape: [8, 7, 5] });
    expect(() => preprocessPair(image, small, 'abdomen')).toThrow(LabelGridError);
    expect(() => preprocessPair(image, small, 'abdomen')).toThrow(`label ${small} (8x7x5 voxels`);
    expect(() => preprocessPair(image, small, 'abdomen')).toThrow(`of its image ${image} (8x7x6 voxels`);
  });

  test('an image with nothing above the window is refused before inference', () => {
    const air = file('air.nii', new Float32Array(count).fill(-1000));
    expect(() => preprocessImageForInference(air, 'abdomen')).toThrow(`${air}: nothing to segment: no voxel is above -175 HU`);
  });
});
