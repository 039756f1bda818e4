import { Rng } from '../../common/rng';
import type { Volume } from '../../data/volume';
import { drawAugment, extractCrop, type CropAugment } from '../../data/voco/augment';
import { sampleVocoBatch, vocoBatchShapes } from '../../data/voco/batch';
import { DEFAULT_VOCO, vocoOptions, VocoSamplingOptionError } from '../../data/voco/options';
import { positionLabels, randomCropStart } from '../../data/voco/position-labels';
import { sampleVoco } from '../../data/voco/sample';

/** A volume whose every voxel holds a distinct value (its index + 1), so a crop shows where it came from. */
function indexVolume(shape: [number, number, number]): Volume {
  const data = new Float32Array(shape[0] * shape[1] * shape[2]);
  for (let i = 0; i < data.length; i++) data[i] = i + 1;
  return { data, shape, affine: [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1] };
}

/** Index of the first element where the arrays differ, -1 when equal (jest's deep equality is slow on 10^5 values). */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

interface Padded {
  readonly full: Float32Array;
  readonly dims: number[];
}

/** `vol` after explicit symmetric zero padding to at least `size` (written the plain way, as the reference). */
function padded(vol: Volume, size: number[]): Padded {
  const [nx, ny, nz] = vol.shape;
  const before = vol.shape.map((n, a) => Math.floor(Math.max(size[a] - n, 0) / 2));
  const dims = vol.shape.map((n, a) => Math.max(n, size[a]));
  const full = new Float32Array(dims[0] * dims[1] * dims[2]);
  for (let x = 0; x < nx; x++)
    for (let y = 0; y < ny; y++)
      for (let z = 0; z < nz; z++) full[((x + before[0]) * dims[1] + y + before[1]) * dims[2] + z + before[2]] = vol.data[(x * ny + y) * nz + z];
  return { full, dims };
}

/** The `roi`^3 block of `p` at `corner`. */
function block(p: Padded, corner: number[], roi: number): Float32Array {
  const out = new Float32Array(roi ** 3);
  let w = 0;
  for (let x = 0; x < roi; x++)
    for (let y = 0; y < roi; y++)
      for (let z = 0; z < roi; z++) out[w++] = p.full[((corner[0] + x) * p.dims[1] + corner[1] + y) * p.dims[2] + corner[2] + z];
  return out;
}

describe('position labels', () => {
  it('is 1 on the base crop a crop sits exactly on and 0 elsewhere', () => {
    const at = (i: number, j: number) => Array.from(positionLabels([i * 64, j * 64], 64, 3));
    expect(at(0, 0)).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(at(1, 2)).toEqual([0, 0, 0, 0, 0, 1, 0, 0, 0]);
    expect(at(2, 0)).toEqual([0, 0, 0, 0, 0, 0, 1, 0, 0]);
  });

  it('splits between neighbours when the crop is shifted by half a crop', () => {
    expect(Array.from(positionLabels([32, 0], 64, 3))).toEqual([0.5, 0, 0, 0.5, 0, 0, 0, 0, 0]);
    expect(Array.from(positionLabels([64, 96], 64, 3))).toEqual([0, 0, 0, 0, 0.5, 0.5, 0, 0, 0]);
    expect(Array.from(positionLabels([32, 32], 64, 3))).toEqual([0.25, 0.25, 0, 0.25, 0.25, 0, 0, 0, 0]);
  });

  it('gives overlap areas over the crop area that sum to 1 for a crop inside the region', () => {
    const labels = positionLabels([10, 100], 64, 3);
    // x: 54 voxels in base column 0, 10 in column 1; y: 28 in row 1, 36 in row 2.
    const expected = [0, 54 * 28, 54 * 36, 0, 10 * 28, 10 * 36, 0, 0, 0].map((a) => a / 4096);
    expect(Array.from(labels)).toEqual(expected.map(Math.fround));
    const rng = new Rng(3);
    for (let n = 0; n < 200; n++) {
      const sum = positionLabels(randomCropStart(rng, 64, 3), 64, 3).reduce((a, b) => a + b, 0);
      expect(sum).toBeCloseTo(1, 6);
    }
  });

  it('draws crop corners as upstream: 0 to grid*roi - roi - 1 inclusive', () => {
    const rng = new Rng(11);
    const seen = new Set<number>();
    for (let n = 0; n < 20000; n++) for (const c of randomCropStart(rng, 8, 3)) seen.add(c);
    expect(Math.min(...seen)).toBe(0);
    expect(Math.max(...seen)).toBe(15);
    expect(seen.size).toBe(16);
  });
});

describe('VoCo sample', () => {
  const plain = vocoOptions({ augment: false });

  it('cuts crops equal to the source voxels of the region, with matching labels', () => {
    const vol = indexVolume([200, 210, 70]);
    const s = sampleVoco(vol, new Rng(5), plain);
    const source = padded(vol, [0, 0, 0]);
    const { regionStart, cropStarts } = s.layout;
    expect(regionStart.every((c, a) => c >= 0 && c + [192, 192, 64][a] <= vol.shape[a])).toBe(true);
    const cube = 64 ** 3;
    cropStarts.forEach((c, n) => {
      const corner = [regionStart[0] + c[0], regionStart[1] + c[1], regionStart[2]];
      expect(firstDifference(s.images.subarray(n * cube, (n + 1) * cube), block(source, corner, 64))).toBe(-1);
      expect(s.labels.subarray(n * 9, (n + 1) * 9)).toEqual(positionLabels(c, 64, 3));
    });
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++) {
        const corner = [regionStart[0] + 64 * i, regionStart[1] + 64 * j, regionStart[2]];
        const k = i * 3 + j;
        expect(firstDifference(s.crops.subarray(k * cube, (k + 1) * cube), block(source, corner, 64))).toBe(-1);
      }
  });

  it('pads a small volume with zeros symmetrically, as MONAI SpatialPadd', () => {
    const vol = indexVolume([101, 150, 40]);
    const s = sampleVoco(vol, new Rng(9), plain);
    const before = [45, 21, 12];
    const source = padded(vol, [192, 192, 64]);
    const { regionStart, cropStarts } = s.layout;
    expect(regionStart[0]).toBe(-before[0]);
    expect(regionStart[2]).toBe(-before[2]);
    const cube = 64 ** 3;
    const c = cropStarts[1];
    const corner = [regionStart[0] + before[0] + c[0], regionStart[1] + before[1] + c[1], 0];
    expect(firstDifference(s.images.subarray(cube, 2 * cube), block(source, corner, 64))).toBe(-1);
    const centre = [regionStart[0] + before[0] + 64, regionStart[1] + before[1] + 64, 0];
    expect(firstDifference(s.crops.subarray(4 * cube, 5 * cube), block(source, centre, 64))).toBe(-1);
    expect(s.crops[0]).toBe(0);
  });

  it('gives the same sample for the same generator state and another for another', () => {
    const vol = indexVolume([196, 200, 66]);
    const a = sampleVoco(vol, new Rng(42));
    const b = sampleVoco(vol, new Rng(42));
    const c = sampleVoco(vol, new Rng(43));
    expect(firstDifference(b.images, a.images)).toBe(-1);
    expect(firstDifference(b.crops, a.crops)).toBe(-1);
    expect(b.labels).toEqual(a.labels);
    expect(b.layout).toEqual(a.layout);
    expect(c.layout).not.toEqual(a.layout);
  });

  it('lays a batch out volume by volume, as the model inputs', () => {
    const vols = [indexVolume([192, 192, 64]), indexVolume([100, 120, 50])];
    const o = vocoOptions({ swBatchSize: 3 });
    const batch = sampleVocoBatch(vols, [new Rng(1), new Rng(2)], o);
    const shapes = vocoBatchShapes(2, o);
    expect(shapes).toEqual({ images: [6, 1, 64, 64, 64], crops: [18, 1, 64, 64, 64], labels: [2, 3, 9] });
    expect(batch.images.length).toBe(6 * 64 ** 3);
    expect(batch.crops.length).toBe(18 * 64 ** 3);
    const second = sampleVoco(vols[1], new Rng(2), o);
    expect(firstDifference(batch.images.subarray(3 * 64 ** 3), second.images)).toBe(-1);
    expect(firstDifference(batch.crops.subarray(9 * 64 ** 3), second.crops)).toBe(-1);
    expect(batch.labels.subarray(27)).toEqual(second.labels);
    expect(batch.layouts[1]).toEqual(second.layout);
  });

  it('rejects bad options with a clear error', () => {
    expect(() => vocoOptions({ roi: 0 })).toThrow(VocoSamplingOptionError);
    expect(() => vocoOptions({ swBatchSize: 1.5 })).toThrow(/swBatchSize must be a whole number/);
    expect(() => vocoOptions({ flipProb: 2 })).toThrow(/flipProb must be a probability/);
  });
});

describe('crop augmentation', () => {
  /** Reference transforms written the plain way: flip an axis, numpy-style rot90 = flip axis 1, then transpose. */
  function reference(input: Float32Array, n: number, aug: CropAugment): Float32Array {
    const get = (a: Float32Array, x: number, y: number, z: number) => a[(x * n + y) * n + z];
    let cur = input;
    for (let axis = 0; axis < 3; axis++) {
      if (!aug.flip[axis]) continue;
      const next = new Float32Array(cur.length);
      for (let x = 0; x < n; x++)
        for (let y = 0; y < n; y++)
          for (let z = 0; z < n; z++) {
            const p = [x, y, z];
            p[axis] = n - 1 - p[axis];
            next[(x * n + y) * n + z] = get(cur, p[0], p[1], p[2]);
          }
      cur = next;
    }
    for (let r = 0; r < aug.rotations; r++) {
      const next = new Float32Array(cur.length);
      for (let x = 0; x < n; x++) for (let y = 0; y < n; y++) for (let z = 0; z < n; z++) next[(x * n + y) * n + z] = get(cur, y, n - 1 - x, z);
      cur = next;
    }
    return cur.map((v) => v + aug.shift);
  }

  it('matches flips, then rot90 in the x-y plane, then the shift, for every combination', () => {
    const vol = indexVolume([9, 8, 7]);
    const src = { data: vol.data, shape: vol.shape, before: [0, 0, 0] as [number, number, number] };
    const original = block(padded(vol, [0, 0, 0]), [2, 1, 1], 5);
    expect(reference(original, 5, { flip: [false, false, false], rotations: 1, shift: 0 })[0]).toBe(original[(0 * 5 + 4) * 5]);
    for (let f = 0; f < 8; f++)
      for (const rotations of [0, 1, 2, 3] as const) {
        const aug: CropAugment = { flip: [(f & 1) > 0, (f & 2) > 0, (f & 4) > 0], rotations, shift: 0.25 };
        const out = new Float32Array(125 + 3);
        extractCrop(src, [2, 1, 1], 5, aug, out, 3);
        expect(out.subarray(3)).toEqual(reference(original, 5, aug));
      }
  });

  it('draws flips, rotations and shifts with upstream probabilities', () => {
    const rng = new Rng(7);
    const n = 20000;
    const flips = [0, 0, 0];
    const turns = [0, 0, 0, 0];
    let shifted = 0;
    let maxShift = 0;
    for (let i = 0; i < n; i++) {
      const a = drawAugment(rng, DEFAULT_VOCO);
      a.flip.forEach((f, axis) => (flips[axis] += f ? 1 : 0));
      turns[a.rotations]++;
      if (a.shift !== 0) shifted++;
      maxShift = Math.max(maxShift, Math.abs(a.shift));
    }
    for (const f of flips) expect(f / n).toBeCloseTo(0.2, 1);
    expect(turns[0] / n).toBeCloseTo(0.8, 1);
    for (const k of [1, 2, 3]) expect(turns[k] / n).toBeCloseTo(0.2 / 3, 1);
    expect(shifted / n).toBeCloseTo(0.5, 1);
    expect(maxShift).toBeLessThanOrEqual(0.1);
    expect(maxShift).toBeGreaterThan(0.09);
    expect(drawAugment(rng, vocoOptions({ augment: false }))).toEqual({ flip: [false, false, false], rotations: 0, shift: 0 });
  });
});
