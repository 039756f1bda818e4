/**
 * Segmentation metrics: Dice against MONAI's DiceMetric (dice_semantics.json and the labels/ cases of
 * ../shared/reference/segmentation), Hausdorff distances against MONAI's own published sphere values and a
 * brute-force reference on small random volumes.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Rng } from '../../common/rng';
import { classOverlap, diceScores, reduceMean, reduceMeanBatch } from '../../data/metrics/dice';
import { hausdorffDistances, torchQuantile } from '../../data/metrics/hausdorff';
import { squaredDistanceTransform } from '../../data/metrics/surface-distance';
import { REFERENCE } from '../helpers/reference';

type Triple = readonly [number, number, number];
const LABELS = path.join(REFERENCE, 'segmentation/labels');
const SEMANTICS = path.join(LABELS, 'dice_semantics.json');
const haveLabels = fs.existsSync(SEMANTICS);
if (!haveLabels) console.log(`skipped the Dice checks against MONAI: no ${LABELS}`);
const describeLabels = haveLabels ? describe : describe.skip;

/** null (JSON for NaN) as NaN. */
const nanOf = (v: number | null): number => (v === null ? NaN : v);
const expectClose = (got: readonly number[], want: readonly (number | null)[], tolerance = 1e-6) => {
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => {
    const w = nanOf(want[i]);
    if (Number.isNaN(w)) expect(g).toBeNaN();
    else expect(Math.abs(g - w)).toBeLessThanOrEqual(tolerance);
  });
};

describeLabels('Dice equals MONAI DiceMetric(include_background=False)', () => {
  const semantics = haveLabels ? (JSON.parse(fs.readFileSync(SEMANTICS, 'utf8')) as Record<string, unknown>) : {};
  const label = [0, 1, 1, 0, 0, 0];
  const single = Object.entries(semantics).filter(([key]) => key !== 'setup' && !key.startsWith('batch')) as [string, { pred: number[]; none: (number | null)[]; mean: number; not_nans: number }][];

  test.each(single)('%s', (_name, item) => {
    const scores = diceScores(item.pred, label, { numClasses: 3 });
    expectClose(scores, item.none);
    const mean = reduceMean([scores]);
    expectClose([mean.value, mean.notNans], [item.mean, item.not_nans]);
  });

  test('a batch: an item without any foreground class in the truth contributes nothing', () => {
    const [, batch] = Object.entries(semantics).find(([key]) => key.startsWith('batch')) as [string, { none: (number | null)[][]; mean: number; not_nans: number }];
    const scores = [diceScores([0, 1, 1, 0, 0, 0], [0, 1, 1, 0, 2, 0], { numClasses: 3 }), diceScores([0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], { numClasses: 3 })];
    scores.forEach((row, i) => expectClose(row, batch.none[i]));
    const mean = reduceMean(scores);
    expectClose([mean.value, mean.notNans], [batch.mean, batch.not_nans]);
  });

  const cases = haveLabels ? fs.readdirSync(LABELS).filter((d) => fs.existsSync(path.join(LABELS, d, 'case.json'))) : [];
  test.each(cases)('%s: original and preprocessed space', (name) => {
    const dir = path.join(LABELS, name);
    const record = JSON.parse(fs.readFileSync(path.join(dir, 'case.json'), 'utf8'));
    const read = (file: string) => {
      const bytes = fs.readFileSync(path.join(dir, file));
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    };
    const numClasses: number = record.num_classes;
    const pairs = {
      original_space: [read(record.inversion.file), read(record.steps[1].outputs.label.file)],
      preprocessed_space: [read(record.prediction.file), read(record.steps[5].outputs.label.file)],
    };
    for (const [space, [pred, truth]] of Object.entries(pairs)) {
      const want = record.dice[space];
      const overlap = classOverlap(pred, truth, numClasses);
      expect([Array.from(overlap.predicted), Array.from(overlap.truth)]).toEqual([want.pred_class_counts, want.label_class_counts]);
      const scores = diceScores(pred, truth, { numClasses });
      expectClose(scores, want.none[0]);
      const mean = reduceMean([scores]);
      expectClose([mean.value, mean.notNans], [want.mean, want.mean_not_nans]);
      const batch = reduceMeanBatch([scores]);
      expectClose(batch.value, want.mean_batch);
      expect(batch.notNans).toEqual(want.mean_batch_not_nans);
    }
  });
});

describe('Dice options and bad input', () => {
  test('ignoreEmpty false scores an absent, unpredicted class 1 and a false positive 0; includeBackground adds class 0', () => {
    expect(diceScores([0, 1, 0, 2], [0, 1, 0, 0], { numClasses: 4, ignoreEmpty: false })).toEqual([1, 0, 1]);
    expect(diceScores([0, 1, 0, 0], [0, 1, 1, 0], { numClasses: 2, includeBackground: true })).toEqual([(2 * 2) / 5, (2 * 1) / 3]);
  });

  test('mean of nothing is 0 with no item counted (as MONAI)', () => {
    expect(reduceMean([[NaN, NaN]])).toEqual({ value: 0, notNans: 0 });
    expect(reduceMeanBatch([[NaN, 0.5], [NaN, 1]])).toEqual({ value: [0, 0.75], notNans: [0, 2] });
  });

  test('a class outside the range is a RangeError naming the voxel', () => {
    expect(() => diceScores([0, 5], [0, 1], { numClasses: 3 })).toThrow(/voxel 1/);
    expect(() => diceScores([0, 0.5], [0, 1], { numClasses: 3 })).toThrow(RangeError);
  });
});

/** MONAI's test sphere: 1 where |(i, j, k) * spacing - centre| <= radius in a 99^3 grid. */
function sphere(radius: number, centre: Triple, spacing: Triple = [1, 1, 1], shape: Triple = [99, 99, 99]): Uint8Array {
  const out = new Uint8Array(shape[0] * shape[1] * shape[2]);
  let n = 0;
  for (let i = 0; i < shape[0]; i++) {
    for (let j = 0; j < shape[1]; j++) {
      for (let k = 0; k < shape[2]; k++, n++) {
        const [a, b, c] = [i * spacing[0] - centre[0], j * spacing[1] - centre[1], k * spacing[2] - centre[2]];
        out[n] = b * b + a * a + c * c <= radius * radius ? 1 : 0;
      }
    }
  }
  return out;
}

describe('Hausdorff distance', () => {
  // MONAI 1.3.2 tests/test_hausdorff_distance.py, euclidean: [directed, undirected] (pred = first sphere)
  test.each([
    ['r20 vs r20 shifted by one voxel', sphere(20, [20, 20, 20]), sphere(20, [19, 19, 19]), undefined, undefined, [1.7320508075688772, 1.7320508075688772]],
    ['r20 vs r40, max', sphere(20, [20, 33, 22]), sphere(40, [20, 33, 22]), undefined, undefined, [20.09975124224178, 20.223748416156685]],
    ['r20 vs r40, 95th percentile', sphere(20, [20, 33, 22]), sphere(40, [20, 33, 22]), undefined, 95, [19.924858845171276, 20.09975124224178]],
    ['anisotropic spacing r20', sphere(20, [20, 20, 20], [0.85, 1.2, 0.9]), sphere(20, [19, 19, 19], [0.85, 1.2, 0.9]), [0.85, 1.2, 0.9] as Triple, undefined, [2.0808651447296143, 2.2671568]],
    ['anisotropic spacing r15 vs r30', sphere(15, [20, 33, 22], [0.85, 1.2, 0.9]), sphere(30, [20, 33, 22], [0.85, 1.2, 0.9]), [0.85, 1.2, 0.9] as Triple, undefined, [15.439640998840332, 15.62594]],
  ])('MONAI sphere case: %s', (_name, pred, truth, spacing, percentile, [directed, undirected]) => {
    const shape: Triple = [99, 99, 99];
    expect(hausdorffDistances(pred, truth, shape, 2, { spacing, percentile, directed: true })[0]).toBeCloseTo(directed, 5);
    expect(hausdorffDistances(pred, truth, shape, 2, { spacing, percentile })[0]).toBeCloseTo(undirected, 5);
  });

  test('empty masks: both NaN; one empty: Infinity for the maximum, NaN for a percentile (as MONAI 1.3.2)', () => {
    const shape: Triple = [6, 5, 4];
    const empty = new Uint8Array(120);
    const blob = new Uint8Array(120);
    blob[(2 * 5 + 2) * 4 + 1] = 1;
    expect(hausdorffDistances(empty, empty, shape, 2, { percentile: 95 })).toEqual([NaN]);
    expect(hausdorffDistances(empty, blob, shape, 2)).toEqual([Infinity]);
    expect(hausdorffDistances(blob, empty, shape, 2, { percentile: 0 })).toEqual([Infinity]);
    expect(hausdorffDistances(empty, blob, shape, 2, { percentile: 95 })).toEqual([NaN]);
    expect(hausdorffDistances(blob, empty, shape, 2, { percentile: 95 })).toEqual([NaN]);
  });

  test('the quantile interpolates linearly between order statistics in float32', () => {
    expect(torchQuantile(Float32Array.from([4, 1, 3, 2]), 0.95)).toBe(Math.fround(3 + Math.fround(Math.fround(0.95) * 3) - 2));
    expect(torchQuantile(Float32Array.from([7]), 0.95)).toBe(7);
  });

  test('equals a brute-force reference on random volumes (surfaces by definition, all pairs of distances)', () => {
    const rng = new Rng(7);
    for (let trial = 0; trial < 12; trial++) {
      const shape: Triple = [3 + Math.floor(rng.uniform() * 9), 3 + Math.floor(rng.uniform() * 9), 2 + Math.floor(rng.uniform() * 9)];
      const spacing: Triple = [0.5 + rng.uniform() * 2, 0.5 + rng.uniform() * 2, 0.5 + rng.uniform() * 3];
      const n = shape[0] * shape[1] * shape[2];
      const density = 0.2 + 0.6 * rng.uniform();
      const pred = Uint8Array.from({ length: n }, () => (rng.uniform() < density ? 1 + Math.floor(rng.uniform() * 2) : 0));
      const truth = Uint8Array.from({ length: n }, () => (rng.uniform() < density ? 1 + Math.floor(rng.uniform() * 2) : 0));
      for (const percentile of [undefined, 95, 50]) {
        for (const directed of [false, true]) {
          const fast = hausdorffDistances(pred, truth, shape, 3, { spacing, percentile, directed });
          const slow = [1, 2].map((c) => bruteForceHausdorff(pred, truth, shape, c, spacing, percentile, directed));
          fast.forEach((v, i) => (Number.isFinite(slow[i]) ? expect(v).toBeCloseTo(slow[i], 5) : expect(v).toBe(slow[i])));
        }
      }
    }
  });

  test('the distance transform is exact against all pairs', () => {
    const rng = new Rng(3);
    const shape: Triple = [7, 9, 5];
    const spacing: Triple = [0.7, 1.3, 2.1];
    const features = Uint8Array.from({ length: 315 }, () => (rng.uniform() < 0.05 ? 1 : 0));
    features[17] = 1;
    const field = squaredDistanceTransform(features, shape, spacing);
    const points = voxelsOf(features, shape);
    voxelsOf(new Uint8Array(315).fill(1), shape).forEach(([x, y, z], i) => {
      const best = Math.min(...points.map(([a, b, c]) => ((x - a) * spacing[0]) ** 2 + ((y - b) * spacing[1]) ** 2 + ((z - c) * spacing[2]) ** 2));
      expect(field[i]).toBeCloseTo(best, 9);
    });
  });
});

function voxelsOf(mask: ArrayLike<number>, shape: Triple): Triple[] {
  const out: Triple[] = [];
  for (let x = 0, i = 0; x < shape[0]; x++) for (let y = 0; y < shape[1]; y++) for (let z = 0; z < shape[2]; z++, i++) if (mask[i]) out.push([x, y, z]);
  return out;
}

/** The definition, with nothing shared with the implementation but the quantile. */
function bruteForceHausdorff(pred: Uint8Array, truth: Uint8Array, shape: Triple, c: number, spacing: Triple, percentile: number | undefined, directed: boolean): number {
  const at = (m: Uint8Array, x: number, y: number, z: number) =>
    x >= 0 && y >= 0 && z >= 0 && x < shape[0] && y < shape[1] && z < shape[2] && m[(x * shape[1] + y) * shape[2] + z] === c;
  const surface = (m: Uint8Array) =>
    voxelsOf(m.map((v) => (v === c ? 1 : 0)), shape).filter(([x, y, z]) =>
      [[-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]].some(([a, b, d]) => !at(m, x + a, y + b, z + d)),
    );
  const [sp, st] = [surface(pred), surface(truth)];
  if (sp.length === 0 && st.length === 0) return NaN;
  if (sp.length === 0 || st.length === 0) return percentile ? NaN : Infinity;
  const distances = (from: Triple[], to: Triple[]) =>
    Float32Array.from(from, ([x, y, z]) => Math.min(...to.map(([a, b, d]) => Math.hypot((x - a) * spacing[0], (y - b) * spacing[1], (z - d) * spacing[2]))));
  const reduce = (d: Float32Array) => (percentile ? torchQuantile(d, percentile / 100) : Math.max(...d));
  const forward = reduce(distances(sp, st));
  return directed ? forward : Math.max(forward, reduce(distances(st, sp)));
}
