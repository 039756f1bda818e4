import { Rng } from '../../common/rng';
import { correctCropCenter, cropCandidates, drawCropCenters, SegmentationSampleError } from '../../data/segmentation/centers';
import { DEFAULT_SEGMENTATION_SAMPLE, segmentationSampleOptions, SegmentationSampleOptionError, type SegmentationSampleOptions } from '../../data/segmentation/options';
import { sampleSegmentation, segmentationSampleShape } from '../../data/segmentation/sample';
import type { Volume } from '../../data/volume';

const AFFINE = [1.5, 0, 0, 0, 0, 1.5, 0, 0, 0, 0, 1.5, 0, 0, 0, 0, 1];

/** An image in [0, 1) with air (0) in the outer shell, and a label that is a function of it. */
function pair(shape: [number, number, number], seed: number, labelOf: (v: number, x: number, y: number, z: number) => number) {
  const rng = new Rng(seed);
  const n = shape[0] * shape[1] * shape[2];
  const image = new Float32Array(n);
  const label = new Float32Array(n);
  let i = 0;
  for (let x = 0; x < shape[0]; x++)
    for (let y = 0; y < shape[1]; y++)
      for (let z = 0; z < shape[2]; z++, i++) {
        const shell = Math.min(x, y, z, shape[0] - 1 - x, shape[1] - 1 - y, shape[2] - 1 - z) < 2;
        image[i] = shell ? 0 : 0.05 + 0.9 * rng.uniform();
        label[i] = labelOf(image[i], x, y, z);
      }
  const vol = (data: Float32Array): Volume => ({ data, shape, affine: AFFINE });
  return { image: vol(image), label: vol(label) };
}

const at = (v: Volume, x: number, y: number, z: number) => v.data[(x * v.shape[1] + y) * v.shape[2] + z];

/** The crop's voxel (i, j, k) as MONAI computes it: the plain crop, flipped per axis, then np.rot90 k times in (x, y). */
function reference(v: Volume, start: readonly number[], roi: number, flip: readonly boolean[], rotations: number, i: number, j: number, k: number): number {
  let [a, b] = [i, j];
  for (let r = 0; r < rotations; r++) [a, b] = [b, roi - 1 - a]; // rot90: out[a][b] = in[b][roi - 1 - a]
  const p = [a, b, k].map((q, ax) => (flip[ax] ? roi - 1 - q : q));
  const [x, y, z] = p.map((q, ax) => q + start[ax]);
  const inside = x >= 0 && y >= 0 && z >= 0 && x < v.shape[0] && y < v.shape[1] && z < v.shape[2];
  return inside ? at(v, x, y, z) : 0;
}

const options = (o: Partial<SegmentationSampleOptions>) => segmentationSampleOptions({ roi: 12, ...o });

describe('segmentation crop centres (RandCropByPosNegLabeld)', () => {
  it('corrects centres as MONAI correct_crop_centers', () => {
    expect([0, 48, 50, 52, 99].map((c) => correctCropCenter(c, 96, 100))).toEqual([48, 48, 50, 52, 52]);
    expect([0, 95].map((c) => correctCropCenter(c, 96, 96))).toEqual([48, 48]);
    expect([0, 99].map((c) => correctCropCenter(c, 95, 100))).toEqual([47, 52]);
    expect([0, 99].map((c) => correctCropCenter(c, 95, 95))).toEqual([47, 47]);
  });

  it('centres 9 of 10 crops on the foreground, the rest on image > 0 background, crops inside the volume', () => {
    // A foreground ball of radius 6 at the centre; background = image > 0 and label 0.
    const { image, label } = pair([40, 34, 30], 1, (v, x, y, z) => ((x - 20) ** 2 + (y - 17) ** 2 + (z - 15) ** 2 <= 36 ? 1 + (v > 0.5 ? 1 : 0) : 0));
    const o = options({ augment: false, numSamples: 4 });
    const candidates = cropCandidates(image, label, o.roi, o.imageThreshold);
    let fg = 0;
    let total = 0;
    const half = o.roi / 2;
    for (let step = 0; step < 400; step++) {
      const s = sampleSegmentation(image, label, new Rng(1000 + step), o, candidates);
      s.starts.forEach((start, n) => {
        total++;
        start.forEach((v, a) => {
          expect(v).toBeGreaterThanOrEqual(0);
          expect(v + o.roi).toBeLessThanOrEqual(image.shape[a]);
        });
        const centre = s.label[n * o.roi ** 3 + (half * o.roi + half) * o.roi + half];
        const centreImage = s.image[n * o.roi ** 3 + (half * o.roi + half) * o.roi + half];
        if (s.foreground[n]) {
          fg++;
          expect(centre).toBeGreaterThan(0); // the ball is far from the borders: no correction moves it
        } else {
          // A corrected background centre may move, so check the voxel it was drawn at only when not corrected.
          const c = start.map((v) => v + half);
          const corrected = c.some((v, a) => v === half || v === image.shape[a] - half);
          if (!corrected) expect([centre, centreImage > 0]).toEqual([0, true]);
        }
      });
    }
    // 1600 draws of p = 0.9: standard deviation 0.0075.
    expect(Math.abs(fg / total - 0.9)).toBeLessThan(0.03);
  });

  it('keeps MONAI pos/neg semantics for edge cases: empty label, everything foreground, nothing to sample', () => {
    const o = options({ augment: false });
    const empty = pair([20, 20, 20], 2, () => 0);
    expect(sampleSegmentation(empty.image, empty.label, new Rng(3), o).foreground).toEqual([false, false, false, false]);
    const full = pair([20, 20, 20], 2, () => 3);
    expect(sampleSegmentation(full.image, full.label, new Rng(3), o).foreground).toEqual([true, true, true, true]);
    const nothing = { ...empty.image, data: new Float32Array(8000) };
    expect(() => sampleSegmentation(nothing, empty.label, new Rng(3), o, undefined, undefined, 'a.nii.gz')).toThrow(/a.nii.gz: no voxel to centre a crop on/);
    const other = { ...empty.label, shape: [20, 20, 19] as [number, number, number], data: new Float32Array(7600) };
    expect(() => sampleSegmentation(empty.image, other, new Rng(3), o)).toThrow(SegmentationSampleError);
    expect(() => segmentationSampleOptions({ pos: 0, neg: 0 })).toThrow(SegmentationSampleOptionError);
    expect(() => segmentationSampleOptions({ flipProb: 2 })).toThrow(/flipProb/);
  });
});

describe('segmentation crop centres by class (RandCropByLabelClassesd)', () => {
  // Class 1 a ball of radius 6, class 2 one of radius 3, 0 the rest; class 3 has no voxel. Candidates lie 2 or more
  // voxels inside (the image shell is 0), so roi-4 centres are never corrected: a centre's label is its class.
  const { image, label } = pair([40, 34, 30], 4, (_, x, y, z) =>
    (x - 14) ** 2 + (y - 17) ** 2 + (z - 15) ** 2 <= 36 ? 1 : (x - 30) ** 2 + (y - 17) ** 2 + (z - 15) ** 2 <= 9 ? 2 : 0,
  );
  const roi = 4;

  it('draws each class in proportion to its ratio, an empty class never, only voxels above the image threshold', () => {
    const threshold = 0.5;
    const c = cropCandidates(image, label, roi, threshold, 'pair', 4);
    expect(c.classes!.map((l) => l.length > 0)).toEqual([true, true, true, false]);
    const centres = drawCropCenters(c, new Rng(5), { roi, numSamples: 4000, sampler: 'classes', pos: 1, neg: 1, ratios: [1, 2, 1, 5] });
    const counts = [0, 0, 0, 0];
    for (const { center, foreground } of centres) {
      const [x, y, z] = center.map((v, a) => v - c.before[a]);
      const l = at(label, x, y, z);
      counts[l]++;
      expect(at(image, x, y, z)).toBeGreaterThan(threshold);
      expect(foreground).toBe(l !== 0);
    }
    // Class 3 is empty, so its ratio counts as 0: shares 1/4, 1/2, 1/4 (4000 draws: standard deviation <= 0.008).
    expect(counts[3]).toBe(0);
    [0.25, 0.5, 0.25].forEach((p, k) => expect(Math.abs(counts[k] / 4000 - p)).toBeLessThan(0.03));
  });

  it('refuses ratios that name no usable class, and bad ratio options, in one line', () => {
    const c = cropCandidates(image, label, roi, 0, 'pair.nii.gz', 4);
    expect(() => drawCropCenters(c, new Rng(1), { roi, numSamples: 1, sampler: 'classes', pos: 1, neg: 1, ratios: [0, 0, 0, 1] }, 'pair.nii.gz')).toThrow(/pair.nii.gz: no voxel to centre a crop on/);
    expect(() => segmentationSampleOptions({ sampler: 'classes' })).toThrow(/ratios of the classes sampler/);
    expect(() => segmentationSampleOptions({ sampler: 'classes', ratios: [1, -1] })).toThrow(/ratios/);
    const s = sampleSegmentation(image, label, new Rng(2), options({ augment: false, sampler: 'classes', ratios: [0, 0, 1], numSamples: 3 }));
    expect(s.foreground).toEqual([true, true, true]);
  });
});

describe('segmentation sample', () => {
  // Label 0..4 as a function of the image, so any spatial difference between the two crops shows.
  const classOf = (v: number) => Math.floor(v * 5);
  const { image, label } = pair([30, 26, 22], 5, (v) => classOf(v));

  it('flips and rotates image and label identically, as MONAI RandFlipd x3 and RandRotate90d', () => {
    const o = options({ flipProb: 0.5, rotateProb: 0.7, scaleProb: 0, shiftProb: 0, numSamples: 4 });
    const seen = new Set<string>();
    for (let step = 0; step < 12; step++) {
      const s = sampleSegmentation(image, label, new Rng(step), o);
      s.augments.forEach((aug, n) => {
        seen.add(`${aug.flip.join()}|${aug.rotations}`);
        const base = n * o.roi ** 3;
        let w = base;
        for (let i = 0; i < o.roi; i++)
          for (let j = 0; j < o.roi; j++)
            for (let k = 0; k < o.roi; k++, w++) {
              if (s.label[w] !== classOf(s.image[w])) throw new Error(`crop ${n} voxel ${i},${j},${k}: label ${s.label[w]} for image ${s.image[w]}`);
              const expected = reference(image, s.starts[n], o.roi, aug.flip, aug.rotations, i, j, k);
              if (s.image[w] !== expected) throw new Error(`crop ${n} voxel ${i},${j},${k}: ${s.image[w]} instead of ${expected}`);
            }
      });
    }
    expect(seen.size).toBeGreaterThan(10);
  });

  it('scales and shifts the intensity of the image only: v * (1 + f) + o in float32', () => {
    const plain = options({ flipProb: 0, rotateProb: 0, scaleProb: 0, shiftProb: 0 });
    const both = options({ flipProb: 0, rotateProb: 0, scaleProb: 1, shiftProb: 1 });
    const a = sampleSegmentation(image, label, new Rng(8), plain);
    const b = sampleSegmentation(image, label, new Rng(8), both);
    expect(b.starts).toEqual(a.starts); // the centres are drawn first, from the same stream
    expect(Array.from(b.label)).toEqual(Array.from(a.label));
    const cube = plain.roi ** 3;
    b.augments.forEach((aug, n) => {
      expect(Math.abs(aug.scale - 1)).toBeLessThanOrEqual(0.1);
      expect(Math.abs(aug.shift)).toBeLessThanOrEqual(0.1);
      expect(aug.scale).not.toBe(1);
      for (let i = n * cube; i < (n + 1) * cube; i++) expect(b.image[i]).toBe(Math.fround(Math.fround(a.image[i] * aug.scale) + aug.shift));
    });
    // Upstream's probabilities over many crops: scale 0.1, shift 0.5, flips 0.2 per axis, rotation 0.2.
    const counts = { scale: 0, shift: 0, flip: 0, rot: 0, n: 0 };
    for (let step = 0; step < 500; step++) {
      for (const aug of sampleSegmentation(image, label, new Rng(step), { ...DEFAULT_SEGMENTATION_SAMPLE, roi: 4 }).augments) {
        counts.n++;
        counts.scale += aug.scale !== 1 ? 1 : 0;
        counts.shift += aug.shift !== 0 ? 1 : 0;
        counts.flip += aug.flip.filter((f) => f).length / 3;
        counts.rot += aug.rotations ? 1 : 0;
      }
    }
    expect(Math.abs(counts.scale / counts.n - 0.1)).toBeLessThan(0.03);
    expect(Math.abs(counts.shift / counts.n - 0.5)).toBeLessThan(0.05);
    expect(Math.abs(counts.flip / counts.n - 0.2)).toBeLessThan(0.03);
    expect(Math.abs(counts.rot / counts.n - 0.2)).toBeLessThan(0.04);
  });

  it('is reproducible: the same generator state gives the same batch, another seed another', () => {
    const o = options({});
    const a = sampleSegmentation(image, label, new Rng(77), o);
    const b = sampleSegmentation(image, label, new Rng(77), o);
    const c = sampleSegmentation(image, label, new Rng(78), o);
    expect(Buffer.from(b.image.buffer).equals(Buffer.from(a.image.buffer))).toBe(true);
    expect(Buffer.from(b.label.buffer).equals(Buffer.from(a.label.buffer))).toBe(true);
    expect(b.augments).toEqual(a.augments);
    expect(Buffer.from(c.image.buffer).equals(Buffer.from(a.image.buffer))).toBe(false);
    expect(segmentationSampleShape(o)).toEqual([4, 1, 12, 12, 12]);
    expect(a.image.length).toBe(4 * 12 ** 3);
  });

  it('pads a volume smaller than the roi (zeros, MONAI symmetric SpatialPad) and crops all of it on that axis', () => {
    const small = pair([7, 20, 12], 9, (v) => classOf(v));
    const o = options({ roi: 12, augment: false });
    const s = sampleSegmentation(small.image, small.label, new Rng(4), o);
    const cube = o.roi ** 3;
    s.starts.forEach((start, n) => {
      expect(start[0]).toBe(-2); // floor((12 - 7) / 2) voxels of padding before
      expect(start[2]).toBe(0);
      for (let i = 0; i < o.roi; i++)
        for (let j = 0; j < o.roi; j++)
          for (let k = 0; k < o.roi; k++) {
            const w = n * cube + (i * o.roi + j) * o.roi + k;
            expect(s.image[w]).toBe(reference(small.image, start, o.roi, [false, false, false], 0, i, j, k));
            expect(s.label[w]).toBe(reference(small.label, start, o.roi, [false, false, false], 0, i, j, k));
          }
    });
  });
});
