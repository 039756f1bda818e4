import * as fs from 'fs';
import * as path from 'path';
import { loadVolume } from '../../data/nifti/read';
import { Family, StepName, preprocessSteps, padToRegion } from '../../data/pipeline';
import { axisOrientations, orientRas, undoOrientRas } from '../../data/transforms/orientation';
import { resampleToSpacing, zoomAffine } from '../../data/transforms/spacing';
import { resizeTrilinear } from '../../data/transforms/resize';
import { foregroundBox, cropBox, cropForeground, uncropBox } from '../../data/transforms/crop-foreground';
import { resampleNearest } from '../../data/transforms/resample';
import { spatialPad, symmetricPadWidths } from '../../data/transforms/spatial-pad';
import { matmul4, roundHalfEven } from '../../data/transforms/matrix';
import type { Volume } from '../../data/volume';
import { BadVolumeError } from '../../data/nifti/errors';
import { REFERENCE } from '../helpers/reference';

/** MONAI 1.3.2 reference outputs. */
const PREPROCESS = path.join(REFERENCE, 'preprocess');
const referenceCases = fs.existsSync(PREPROCESS) ? fs.readdirSync(PREPROCESS).filter((d) => d.startsWith('v')) : [];
const describeWithReference = referenceCases.length > 0 ? describe : describe.skip;

const MONAI_STEP: Record<StepName, string> = {
  orientation: 'Orientationd',
  spacing: 'Spacingd',
  scaleIntensity: 'ScaleIntensityRanged',
  cropForeground: 'CropForegroundd',
  spatialPad: 'SpatialPadd',
  resize: 'Resized',
};

interface ReferenceStep {
  transform: string;
  file: string;
  shape: number[];
  affine: number[][];
  box_start?: number[];
  box_end?: number[];
  pad_width?: number[][];
}

function readF32(file: string): Float32Array {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** Largest gap beyond the bar: 1e-4, or one float32 step of the reference value where that is larger (HU > 1024). */
function worstExcess(actual: Float32Array, expected: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    const ulp = Math.abs(e) * 2 ** -23;
    worst = Math.max(worst, Math.abs(actual[i] - e) - Math.max(1e-4, ulp));
  }
  return worst;
}

const referenceRuns = referenceCases.flatMap((name) => {
  const json = JSON.parse(fs.readFileSync(path.join(PREPROCESS, name, 'case.json'), 'utf8'));
  return Object.keys(json.pipelines).map((family) => [name, family] as [string, Family]);
});

describeWithReference('every step equals MONAI 1.3.2 on the reference cases', () => {
  test.each(referenceRuns.length > 0 ? referenceRuns : [['none', 'abdomen' as Family]])('%s %s', (name, family) => {
    const dir = path.join(PREPROCESS, name);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'case.json'), 'utf8'));
    const steps: ReferenceStep[] = json.pipelines[family].steps;
    const { volume } = loadVolume(path.join(dir, json.input.file));
    const seen: StepName[] = [];
    let previous: Volume = volume;
    preprocessSteps(volume, family, {}, (step, out) => {
      seen.push(step);
      const ref = steps.find((s) => s.transform === MONAI_STEP[step]) as ReferenceStep;
      expect(out.shape).toEqual(ref.shape.slice(1));
      ref.affine.flat().forEach((v, i) => expect(Math.abs(out.affine[i] - v)).toBeLessThanOrEqual(1e-5));
      expect(out.data.length).toBe(ref.shape.reduce((a, b) => a * b, 1));
      expect(worstExcess(out.data, readF32(path.join(dir, ref.file)))).toBeLessThanOrEqual(0);
      if (ref.box_start) expect(foregroundBox(previous)).toEqual({ start: ref.box_start, end: ref.box_end });
      if (ref.pad_width) expect(symmetricPadWidths(previous.shape, [64, 64, 64])).toEqual(ref.pad_width);
      previous = out;
    });
    expect(seen).toEqual(['orientation', 'spacing', 'scaleIntensity', 'cropForeground', 'spatialPad']);
  });
});

const eye = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];

/** A volume whose values are a linear function of world position (trilinear interpolation reproduces it). */
function linearWorldVolume(shape: [number, number, number], affine: number[], f: (w: number[]) => number): Volume {
  const data = new Float32Array(shape[0] * shape[1] * shape[2]);
  let i = 0;
  for (let x = 0; x < shape[0]; x++) for (let y = 0; y < shape[1]; y++) for (let z = 0; z < shape[2]; z++) data[i++] = f(world(affine, [x, y, z]));
  return { data, shape, affine };
}

function world(affine: readonly number[], v: number[]): number[] {
  return [0, 1, 2].map((r) => affine[r * 4] * v[0] + affine[r * 4 + 1] * v[1] + affine[r * 4 + 2] * v[2] + affine[r * 4 + 3]);
}

describe('orientation', () => {
  test('axis codes of flipped, permuted and oblique affines', () => {
    expect(axisOrientations([-1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1])).toEqual([
      { worldAxis: 0, flip: true },
      { worldAxis: 1, flip: true },
      { worldAxis: 2, flip: false },
    ]);
    // voxel axes (i, j, k) pointing to (S, R, P)
    expect(axisOrientations([0, 2, 0, 0, 0, 0, -3, 0, 1, 0, 0, 0, 0, 0, 0, 1]).map((o) => [o.worldAxis, o.flip])).toEqual([
      [2, false],
      [0, false],
      [1, true],
    ]);
    const c = Math.cos(0.4), s = Math.sin(0.4);
    expect(axisOrientations([c, -s, 0, 0, s, c, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]).map((o) => o.worldAxis)).toEqual([0, 1, 2]);
  });

  test('every voxel keeps its world position after reorientation', () => {
    const affine = [0, 2, 0, 5, 0, 0, -3, 7, -1.5, 0, 0, 9, 0, 0, 0, 1];
    const f = (w: number[]) => w[0] * 3 + w[1] * 0.5 - w[2];
    const out = orientRas(linearWorldVolume([4, 5, 6], affine, f));
    expect(out.shape).toEqual([5, 6, 4]);
    expect(axisOrientations(out.affine).every((o, i) => o.worldAxis === i && !o.flip)).toBe(true);
    const [nx, ny, nz] = out.shape;
    for (let x = 0; x < nx; x++) for (let y = 0; y < ny; y++) for (let z = 0; z < nz; z++) {
      expect(out.data[(x * ny + y) * nz + z]).toBeCloseTo(f(world(out.affine, [x, y, z])), 4);
    }
  });
});

describe('spacing', () => {
  test('shape rounds half to even and the origin stays at the first voxel', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2]);
    const volume = linearWorldVolume([41, 11, 4], [0.75, 0, 0, -60, 0, 1.5, 0, 2, 0, 0, 3, 1, 0, 0, 0, 1], (w) => w[0]);
    const out = resampleToSpacing(volume, [1.5, 1.5, 1.5]);
    // (41 - 1) * 0.75 / 1.5 + 1 = 21; (4 - 1) * 3 / 1.5 + 1 = 7; y already at 1.5 mm keeps its grid
    expect(out.shape).toEqual([21, 11, 7]);
    expect(out.affine).toEqual([1.5, 0, 0, -60, 0, 1.5, 0, 2, 0, 0, 1.5, 1, 0, 0, 0, 1]);
  });

  test('oblique volumes keep their rotation and resample world-linear values exactly', () => {
    const c = Math.cos(0.5), s = Math.sin(0.5);
    const affine = [0.7 * c, -0.9 * s, 0, -20, 0.7 * s, 0.9 * c, 0, 10, 0, 0, 2.5, 30, 0, 0, 0, 1];
    const f = (w: number[]) => 2 * w[0] - w[1] + 0.5 * w[2];
    const out = resampleToSpacing(linearWorldVolume([20, 16, 9], affine, f), [1.5, 1.5, 1.5]);
    const rotation = zoomAffine(affine, [1, 1, 1]);
    expect(rotation[0]).toBeCloseTo(c, 12);
    expect(rotation[4]).toBeCloseTo(s, 12);
    const [nx, ny, nz] = out.shape;
    // interior voxels (the border is clamped, so only points inside the input grid are linear)
    for (let x = 0; x < nx - 1; x++) for (let y = 0; y < ny - 1; y++) for (let z = 0; z < nz - 1; z++) {
      expect(out.data[(x * ny + y) * nz + z]).toBeCloseTo(f(world(out.affine, [x, y, z])), 3);
    }
  });

  test('a sheared affine is resampled with the general (non-separable) path', () => {
    const affine = [1, 0.3, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
    const f = (w: number[]) => w[0] + 2 * w[1] + 3 * w[2];
    const volume = linearWorldVolume([12, 12, 12], affine, f);
    const out = resampleToSpacing(volume, [0.8, 0.8, 0.8]);
    expect(out.affine[1]).toBe(0); // shear removed
    let checked = 0;
    for (let x = 0; x < out.shape[0]; x++) for (let y = 0; y < out.shape[1]; y++) for (let z = 0; z < out.shape[2]; z++) {
      const w = world(out.affine, [x, y, z]);
      const v = world([1, -0.3, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], w); // input voxel position
      if (v.every((c) => c >= 0 && c <= 11)) {
        expect(out.data[(x * out.shape[1] + y) * out.shape[2] + z]).toBeCloseTo(f(w), 3);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(500);
  });

  test('a strongly sheared affine whose grid would explode is a BadVolumeError naming the source', () => {
    const volume: Volume = { data: new Float32Array(10 * 9 * 8), shape: [10, 9, 8], affine: [0.9, 0.1, 0, 0, -0.1, 32767, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1] };
    expect(() => resampleToSpacing(volume, [1.5, 1.5, 1.5], 'ct.nii')).toThrow(BadVolumeError);
    expect(() => resampleToSpacing(volume, [1.5, 1.5, 1.5], 'ct.nii')).toThrow(/^ct\.nii: resampling to 1\.5x1\.5x1\.5 mm would give/);
  });

  test('a volume already at the target spacing is returned unchanged', () => {
    const volume = linearWorldVolume([5, 6, 7], [1.5, 0, 0, 3, 0, 1.5, 0, 4, 0, 0, 1.5, 5, 0, 0, 0, 1], (w) => w[2]);
    const out = resampleToSpacing(volume, [1.5, 1.5, 1.5]);
    expect(out.shape).toEqual(volume.shape);
    expect(out.data).toEqual(volume.data);
  });
});

describe('foreground crop and pad', () => {
  const shape: [number, number, number] = [6, 7, 8];
  const data = new Float32Array(6 * 7 * 8);
  data[(2 * 7 + 3) * 8 + 1] = 0.5;
  data[(4 * 7 + 1) * 8 + 6] = 1;
  data[(5 * 7 + 6) * 8 + 7] = -1; // not foreground
  const volume: Volume = { data, shape, affine: [2, 0, 0, 10, 0, 3, 0, 20, 0, 0, 4, 30, 0, 0, 0, 1] };

  test('the box holds every positive voxel and the origin moves to it', () => {
    expect(foregroundBox(volume)).toEqual({ start: [2, 1, 1], end: [5, 4, 7] });
    const out = cropForeground(volume);
    expect(out.shape).toEqual([3, 3, 6]);
    expect(out.affine).toEqual([2, 0, 0, 14, 0, 3, 0, 23, 0, 0, 4, 34, 0, 0, 0, 1]);
    expect(out.data[(0 * 3 + 2) * 6 + 0]).toBe(0.5);
    expect(out.data[(2 * 3 + 0) * 6 + 5]).toBe(1);
  });

  test('no foreground gives an empty crop, which the pad turns into zeros', () => {
    const empty = cropForeground({ ...volume, data: new Float32Array(data.length) });
    expect(empty.shape).toEqual([0, 0, 0]);
    const padded = spatialPad(empty, [64, 64, 64]);
    expect(padded.shape).toEqual([64, 64, 64]);
    expect(padded.data.every((v) => v === 0)).toBe(true);
  });

  test('symmetric pad puts the odd voxel after, and padToRegion reaches 192x192x64', () => {
    expect(symmetricPadWidths([21, 64, 70], [64, 64, 64])).toEqual([[21, 22], [0, 0], [0, 0]]);
    const out = padToRegion(volume);
    expect(out.shape).toEqual([192, 192, 64]);
    expect(out.affine).toEqual(matmul4(volume.affine, [1, 0, 0, -93, 0, 1, 0, -92, 0, 0, 1, -28, 0, 0, 0, 1]));
    expect(out.data[((93 + 2) * 192 + 92 + 3) * 64 + 28 + 1]).toBe(0.5);
  });
});

describe('resize (trilinear, align_corners=True)', () => {
  test('reproduces a linear ramp at the aligned corners and scales the affine as MONAI', () => {
    const shape: [number, number, number] = [5, 9, 3];
    const f = (x: number, y: number, z: number) => 0.1 * x - 0.02 * y + 0.3 * z;
    const data = new Float32Array(5 * 9 * 3);
    let i = 0;
    for (let x = 0; x < 5; x++) for (let y = 0; y < 9; y++) for (let z = 0; z < 3; z++) data[i++] = f(x, y, z);
    const out = resizeTrilinear({ data, shape, affine: eye }, [9, 4, 5]);
    expect(out.shape).toEqual([9, 4, 5]);
    for (let x = 0; x < 9; x++) for (let y = 0; y < 4; y++) for (let z = 0; z < 5; z++) {
      expect(out.data[(x * 4 + y) * 5 + z]).toBeCloseTo(f((x * 4) / 8, (y * 8) / 3, (z * 2) / 4), 5);
    }
    expect(out.affine).toEqual([5 / 9, 0, 0, (5 / 9 - 1) / 2, 0, 9 / 4, 0, (9 / 4 - 1) / 2, 0, 0, 3 / 5, (3 / 5 - 1) / 2, 0, 0, 0, 1]);
  });

  test('equals torch.nn.functional.interpolate(trilinear, align_corners=True) on a small volume', () => {
    // torch 1.13: x = [((i * 37) % 11) / 10 for i in range(60)] as float32 (1, 1, 4, 3, 5), resized to (6, 5, 3)
    const torchOutput = [
      0, 0.8, 0.5, 0.45, 0.7, 0.4, 0.9, 0.6, 0.3, 0.8, 0.5, 0.2, 0.7, 0.4, 0.1, 0.3, 0.44, 0.8, 0.42, 0.34, 0.7, 0.54,
      0.24, 0.6, 0.44, 0.47, 0.5, 0.34, 0.7, 0.4, 0.6, 0.3, 0.88, 0.5, 0.2, 0.78, 0.4, 0.1, 0.68, 0.3, 0.44, 0.58, 0.2,
      0.78, 0.48, 0.9, 0.6, 0.52, 0.8000001, 0.5000001, 0.42, 0.7, 0.4, 0.32, 0.6, 0.41, 0.22, 0.5000001, 0.42, 0.12,
      0.7599999, 0.4599999, 0.6, 0.66, 0.58, 0.5000001, 0.5599999, 0.7, 0.4, 0.4599999, 0.6, 0.3, 0.36, 0.5000001, 0.2,
      0.4, 0.1, 0.9, 0.3, 0.55, 0.8, 0.2, 1, 0.7, 0.1, 0.9, 0.6, 0, 0.8, 0.5,
    ];
    const data = Float32Array.from({ length: 60 }, (_, i) => ((i * 37) % 11) / 10);
    const out = resizeTrilinear({ data, shape: [4, 3, 5], affine: eye }, [6, 5, 3]);
    out.data.forEach((v, i) => expect(Math.abs(v - torchOutput[i])).toBeLessThanOrEqual(2e-7));
  });

  test('the resize variant ends at exactly 192x192x64', () => {
    const shape: [number, number, number] = [30, 20, 10];
    const data = Float32Array.from({ length: 6000 }, (_, i) => (i % 7) * 100);
    const out = preprocessSteps({ data, shape, affine: [2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1] }, 'headneck', { resize: true });
    expect(out.shape).toEqual([192, 192, 64]);
  });
});

describe('label resampling and its inverse', () => {
  const ramp = (n: number) => Float32Array.from({ length: n }, (_, i) => i);

  test('nearest: exact .5 ties go up, float32 near-ties go to the nearer side, coordinates clamp at the border', () => {
    // 2.0 mm -> 1.5 mm: c = 0.75 i, exact ties at i = 2 (1.5), 6 (4.5).
    const tie = resampleNearest(ramp(6), [1, 1, 6], [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0.75, 0, 0, 0, 0, 1], [1, 1, 8]);
    expect(Array.from(tie)).toEqual([0, 1, 2, 2, 3, 4, 5, 5]);
    // The float32 voxel size 0.800000011920929 -> 1.5 mm: c = 7.4999998... at i = 4 takes 7, as MONAI.
    const s = Math.fround(0.8);
    const near = resampleNearest(ramp(48), [1, 1, 48], [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1.5 / s, 0, 0, 0, 0, 1], [1, 1, 6]);
    expect(Array.from(near)).toEqual([0, 2, 4, 6, 7, 9]);
    const clamped = resampleNearest(ramp(4), [1, 1, 4], [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2, -3, 0, 0, 0, 1], [1, 1, 5]);
    expect(Array.from(clamped)).toEqual([0, 0, 1, 3, 3]);
  });

  test('undoOrientRas and uncropBox restore the original grid exactly', () => {
    const affine = [0, 2, 0, 5, 0, 0, -3, 7, -1.5, 0, 0, 9, 0, 0, 0, 1];
    const original: Volume = { data: ramp(4 * 5 * 6), shape: [4, 5, 6], affine };
    const back = undoOrientRas(orientRas(original), original);
    expect(back.shape).toEqual([4, 5, 6]);
    expect(back.affine).toEqual(affine);
    expect(Array.from(back.data)).toEqual(Array.from(original.data));
    const box = { start: [1, 2, 0] as [number, number, number], end: [3, 5, 6] as [number, number, number] };
    const padded = uncropBox(cropBox(original, box), box, original);
    const [, ny, nz] = original.shape;
    padded.data.forEach((v, i) => {
      const [x, y, z] = [Math.floor(i / (ny * nz)), Math.floor(i / nz) % ny, i % nz];
      const inside = x >= 1 && x < 3 && y >= 2 && y < 5 && z >= 0 && z < 6;
      expect(v).toBe(inside ? original.data[i] : 0);
    });
  });
});
