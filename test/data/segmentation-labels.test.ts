import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadVolume } from '../../data/nifti/read';
import { loadLabelMap, writeLabelNifti } from '../../data/segmentation/label-map';
import { preprocessPair, preprocessImageForInference, SegmentationStep } from '../../data/segmentation/preprocess';
import { invertLabels } from '../../data/transforms/invert';
import type { Volume } from '../../data/volume';
import { REFERENCE } from '../helpers/reference';

/** MONAI 1.3.2 image/label chains and Invertd (see the README there). */
const LABELS = path.join(REFERENCE, 'segmentation/labels');
const cases = fs.existsSync(LABELS) ? fs.readdirSync(LABELS).filter((d) => d.startsWith('v')) : [];
if (cases.length === 0) console.log(`skipped segmentation label tests: no reference fixtures at ${LABELS}`);
const describeWithReference = cases.length > 0 ? describe : describe.skip;

interface Output {
  file: string;
  shape: number[];
  affine: number[][];
  class_counts?: number[];
}
interface Step {
  transform: string;
  outputs: { image: Output; label: Output };
  foreground_start_coord?: number[];
  foreground_end_coord?: number[];
}
type Axis = 'x' | 'y' | 'z';
interface Case {
  input: { image: { file: string }; label: { file: string } };
  steps: Step[];
  label_spacing_nearest: { ties: Record<Axis, { tie_output_indices: number[] }> };
  prediction: { file: string; shape: number[] };
  inversion: { file: string; shape: number[]; affine: number[][]; label_roundtrip_voxel_agreement: number };
}

const MONAI_STEP: Record<SegmentationStep, string> = {
  orientation: 'Orientationd',
  spacing: 'Spacingd',
  scaleIntensity: 'ScaleIntensityRanged',
  cropForeground: 'CropForegroundd',
};

function readF32(file: string): Float32Array {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** Voxels whose labels differ, as [x, y, z]. */
function differingVoxels(actual: Volume, expected: Float32Array): number[][] {
  const [, ny, nz] = actual.shape;
  const out: number[][] = [];
  for (let i = 0; i < expected.length; i++) {
    if (actual.data[i] !== expected[i]) out.push([Math.floor(i / (ny * nz)), Math.floor(i / nz) % ny, i % nz]);
  }
  return out;
}

function expectGrid(volume: Volume, output: Output, channelFirst = true): void {
  expect(volume.shape).toEqual(channelFirst ? output.shape.slice(1) : output.shape);
  output.affine.flat().forEach((v, i) => expect(Math.abs(volume.affine[i] - v)).toBeLessThanOrEqual(1e-6));
}

describeWithReference.each(cases)('segmentation chain of %s equals MONAI 1.3.2', (name) => {
  const dir = path.join(LABELS, name);
  const info = JSON.parse(fs.readFileSync(path.join(dir, 'case.json'), 'utf8')) as Case;
  const imageFile = path.join(dir, info.input.image.file);
  const labelFile = path.join(dir, info.input.label.file);
  const step = (transform: string) => info.steps.find((s) => s.transform === transform) as Step;
  const ref = (output: Output) => readF32(path.join(dir, output.file));

  test('LoadImaged: the label as float32 class indices, the image in HU', () => {
    const loaded = step('LoadImaged').outputs;
    const label = loadLabelMap(labelFile);
    expectGrid(label.volume, loaded.label, false);
    expect(differingVoxels(label.volume, ref(loaded.label))).toEqual([]);
    expect(label.maxLabel).toBe((loaded.label.class_counts as number[]).length - 1);
    expect(maxAbsDiff(loadVolume(imageFile).volume.data, ref(loaded.image))).toBeLessThanOrEqual(1e-3);
  });

  test('every step of both keys, the crop box, and the listed ties only', () => {
    const seen: SegmentationStep[] = [];
    const pair = preprocessPair(imageFile, labelFile, 'abdomen', (name, image, label) => {
      seen.push(name);
      const expected = step(MONAI_STEP[name]);
      expectGrid(image, expected.outputs.image);
      expectGrid(label as Volume, expected.outputs.label);
      const imageBar = name === 'orientation' || name === 'spacing' ? 1e-3 : 1e-5;
      expect(maxAbsDiff(image.data, ref(expected.outputs.image))).toBeLessThanOrEqual(imageBar);
      const differing = differingVoxels(label as Volume, ref(expected.outputs.label));
      if (name === 'spacing') {
        // Either neighbour may be taken at an exact .5 tie of the nearest resampling.
        const ties = info.label_spacing_nearest.ties;
        const atTie = (v: number[]) => (['x', 'y', 'z'] as Axis[]).some((a, i) => ties[a].tie_output_indices.includes(v[i]));
        expect(differing.filter((v) => !atTie(v))).toEqual([]);
      } else {
        expect(differing).toEqual([]);
      }
    });
    expect(seen).toEqual(['orientation', 'spacing', 'scaleIntensity', 'cropForeground']);
    const crop = step('CropForegroundd');
    expect(pair.record.crop).toEqual({ start: crop.foreground_start_coord, end: crop.foreground_end_coord });
    expect(pair.record.spaced.shape).toEqual(step('Spacingd').outputs.image.shape.slice(1));
    expect(pair.record.original.affine).toEqual(loadVolume(imageFile).volume.affine);
  });

  test('Invertd(nearest_interp=True) of the prediction: bit-exact, on the original grid', () => {
    const { volume, record } = preprocessImageForInference(imageFile, 'abdomen');
    expect(volume.shape).toEqual(info.prediction.shape.slice(1));
    const pred = readF32(path.join(dir, info.prediction.file));
    const inverted = invertLabels({ data: pred, shape: volume.shape }, record);
    expect(inverted.shape).toEqual(info.inversion.shape.slice(1));
    // MONAI's inverse arithmetic leaves the last bits of its affine off the file's; ours is the file's exactly.
    info.inversion.affine.flat().forEach((v, i) => expect(Math.abs(inverted.affine[i] - v)).toBeLessThanOrEqual(1e-9));
    expect(inverted.affine).toEqual(loadVolume(imageFile).volume.affine);
    expect(Buffer.from(inverted.data.buffer).equals(fs.readFileSync(path.join(dir, info.inversion.file)))).toBe(true);
    // The preprocessed label brought back agrees with the label file on the same voxels as in MONAI.
    const pair = preprocessPair(imageFile, labelFile, 'abdomen');
    const back = invertLabels(pair.label, pair.record).data;
    const original = loadLabelMap(labelFile).volume.data;
    expect(original.filter((v, i) => v === back[i]).length / original.length).toBe(info.inversion.label_roundtrip_voxel_agreement);
  });

  test('the inverted labels written as NIfTI read back on the original grid with the scan\'s header geometry', () => {
    const { volume, record, header } = preprocessImageForInference(imageFile, 'abdomen');
    const pred = readF32(path.join(dir, info.prediction.file));
    const inverted = invertLabels({ data: pred, shape: volume.shape }, record);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-seg-'));
    try {
      for (const [name, labels, dtype] of [
        ['seg.nii.gz', inverted, 'uint8'],
        // More than 255 classes: int16.
        ['many.nii', { ...inverted, data: inverted.data.map((v) => (v === 4 ? 300 : v)) }, 'int16'],
      ] as const) {
        const file = path.join(tmp, name);
        writeLabelNifti(file, labels, header);
        const back = loadLabelMap(file);
        expect(back.header.datatypeName).toBe(dtype);
        expect(back.volume.shape).toEqual(header.shape);
        expect(back.volume.affine).toEqual(loadVolume(imageFile).volume.affine);
        expect(Buffer.from(back.volume.data.buffer).equals(Buffer.from(labels.data.buffer))).toBe(true);
        for (const key of ['pixdim', 'qformCode', 'sformCode', 'quatern', 'qoffset', 'srow', 'xyztUnits'] as const) {
          expect(back.header[key]).toEqual(header[key]);
        }
      }
      expect(fs.readdirSync(tmp).sort()).toEqual(['many.nii', 'seg.nii.gz']);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
