import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadDecathlonList } from '../../data/datalist';
import { loadVolume } from '../../data/nifti/read';
import { ensurePhantomDataset, phantomSeed, PhantomDatasetError, writePhantomDataset } from '../../data/phantom/dataset';
import { generatePhantom, type Phantom } from '../../data/phantom/generate';
import { AXIAL_ORIENTATIONS, DEFAULT_GEOMETRY, PhantomOptionError, type GeometryOptions } from '../../data/phantom/geometry';
import { paint, type PatientGrid } from '../../data/phantom/rasterize';
import { Capsule, Ellipsoid, EllipticCylinder, Slab, type Shape } from '../../data/phantom/shapes';
import { label, TISSUES, type TissueName } from '../../data/phantom/tissues';
import { ORGANS, organLabel, organLabelTable, type OrganName } from '../../data/phantom/organs';
import { FAMILY_PARAMS } from '../../data/pipeline';
import { preprocessSegmentation } from '../../data/segmentation/preprocess';
import { foregroundBox } from '../../data/transforms/crop-foreground';
import { orientRas } from '../../data/transforms/orientation';
import { scaleIntensityRange } from '../../data/transforms/scale-intensity';

/** Small scans so that the tests stay fast. */
const SMALL: Partial<GeometryOptions> = { inPlaneSize: [48, 72], slices: [24, 48] };
const TINY: Partial<GeometryOptions> = { inPlaneSize: [24, 40], slices: [12, 20] };

interface TissueStats {
  readonly count: number;
  /** World (RAS mm) centroid. */
  readonly centroid: number[];
  readonly mean: number;
}

/** Voxel count, world centroid and mean value of every tissue, in one pass. */
function tissueStats(p: Phantom): (tissue: TissueName) => TissueStats {
  const [, ny, nz] = p.volume.shape;
  const a = p.volume.affine;
  const n = TISSUES.length;
  const count = new Float64Array(n);
  const total = new Float64Array(n);
  const sum = new Float64Array(3 * n);
  for (let at = 0; at < p.labels.length; at++) {
    const l = p.labels[at];
    const v = [Math.floor(at / (ny * nz)), Math.floor(at / nz) % ny, at % nz];
    for (let w = 0; w < 3; w++) sum[3 * l + w] += a[4 * w] * v[0] + a[4 * w + 1] * v[1] + a[4 * w + 2] * v[2] + a[4 * w + 3];
    total[l] += p.volume.data[at];
    count[l]++;
  }
  return (tissue) => {
    const l = label(tissue);
    return { count: count[l], centroid: [0, 1, 2].map((w) => sum[3 * l + w] / count[l]), mean: total[l] / count[l] };
  };
}

/** The bytes of a typed array (a view may sit inside a larger buffer). */
function bytes(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

describe('phantom rasterizer', () => {
  /** A 40 x 36 x 30 grid whose axes run along patient y (down), z (up) and x (down), 1.1 / 0.9 / 1.3 mm apart. */
  const axisOf: [number, number, number] = [1, 2, 0];
  const steps = [-1.1, 0.9, -1.3];
  const shape: [number, number, number] = [40, 36, 30];
  const coords = shape.map((n, a) => Float64Array.from({ length: n }, (_, i) => 20 + steps[a] * i - (a === 1 ? 35 : 0))) as unknown as PatientGrid['coords'];
  const grid: PatientGrid = { shape, axisOf, coords };

  it('marks exactly the voxels whose centres lie inside each shape', () => {
    const shapes: Shape[] = [
      new Ellipsoid([0, 2, -8], [9, 6, 11], 0.7),
      new EllipticCylinder(-3, 1, 7, 12, -20, 4),
      new Capsule([-12, -10, -25], [10, 15, 10], 4),
      new Slab(new Ellipsoid([0, 0, 0], [15, 15, 15]), 1, 3, Infinity),
    ];
    for (const s of shapes) {
      const labels = new Uint8Array(shape[0] * shape[1] * shape[2]);
      paint(labels, grid, s, 7);
      let inside = 0;
      let at = 0;
      const p = [0, 0, 0];
      for (let i = 0; i < shape[0]; i++)
        for (let j = 0; j < shape[1]; j++)
          for (let k = 0; k < shape[2]; k++, at++) {
            [p[axisOf[0]], p[axisOf[1]], p[axisOf[2]]] = [coords[0][i], coords[1][j], coords[2][k]];
            const expected = s.contains(p[0], p[1], p[2]) ? 7 : 0;
            if (labels[at] !== expected) throw new Error(`voxel ${i},${j},${k}: ${labels[at]} instead of ${expected}`);
            if (expected) inside++;
          }
      expect(inside).toBeGreaterThan(100);
    }
    const sphere = new Uint8Array(shape[0] * shape[1] * shape[2]);
    paint(sphere, grid, new Ellipsoid([0, 2, -8], [8, 8, 8]), 1);
    const voxelMm3 = 1.1 * 0.9 * 1.3;
    expect((sphere.reduce((a, b) => a + b, 0) * voxelMm3) / ((4 / 3) * Math.PI * 512)).toBeCloseTo(1, 1);
  });

  it('paints only over the labels it is allowed to', () => {
    const n = shape[0] * shape[1] * shape[2];
    const cylinder = new EllipticCylinder(0, 0, 10, 10, -30, 30);
    const ball = new Ellipsoid([0, 0, 0], [14, 14, 14]);
    const [inCylinder, inBall, both] = [new Uint8Array(n), new Uint8Array(n), new Uint8Array(n)];
    paint(inCylinder, grid, cylinder, 1);
    paint(inBall, grid, ball, 1);
    paint(both, grid, cylinder, 2);
    paint(both, grid, ball, 5, Uint8Array.from({ length: 256 }, (_, l) => (l === 2 ? 1 : 0)));
    const expected = Uint8Array.from(inCylinder, (c, at) => (c ? (inBall[at] ? 5 : 2) : 0));
    expect(both).toEqual(expected);
    expect(both.includes(5) && both.includes(2) && inBall.some((b, at) => b === 1 && inCylinder[at] === 0)).toBe(true);
  });
});

describe('phantom generator', () => {
  it('is deterministic in its seed', () => {
    const a = generatePhantom(21, { geometry: SMALL });
    const b = generatePhantom(21, { geometry: SMALL });
    const c = generatePhantom(22, { geometry: SMALL });
    expect(bytes(b.volume.data).equals(bytes(a.volume.data))).toBe(true);
    expect(b.volume.affine).toEqual(a.volume.affine);
    expect(bytes(c.volume.data).equals(bytes(a.volume.data))).toBe(false);
  });

  it('varies orientation, size, spacing and stored type within the requested ranges', () => {
    const orientations = new Set<string>();
    const types = new Set<string>();
    for (let seed = 0; seed < 24; seed++) {
      const p = generatePhantom(seed, { geometry: { ...TINY, sliceSpacing: [1, 5] } });
      const { shape, spacing, orientation, axisOf } = p.acquisition;
      orientations.add(orientation);
      types.add(p.storedType);
      expect(AXIAL_ORIENTATIONS).toContain(orientation);
      const slice = axisOf.indexOf(2);
      for (let a = 0; a < 3; a++) {
        const [lo, hi] = a === slice ? [12, 20] : [24, 40];
        expect(shape[a]).toBeGreaterThanOrEqual(lo);
        expect(shape[a]).toBeLessThanOrEqual(hi);
        const [slo, shi] = a === slice ? [1, 5] : DEFAULT_GEOMETRY.inPlaneSpacing;
        expect(spacing[a]).toBeGreaterThanOrEqual(slo - 1e-6);
        expect(spacing[a]).toBeLessThanOrEqual(shi + 1e-6);
        // The affine's column a has length spacing[a] along the patient axis of the orientation letter.
        const column = [0, 1, 2].map((w) => p.volume.affine[4 * w + a]);
        expect(Math.abs(column[axisOf[a]])).toBeCloseTo(spacing[a], 6);
      }
      if (p.storedType === 'int16') expect(p.volume.data.every(Number.isInteger)).toBe(true);
    }
    expect(orientations.size).toBeGreaterThan(6);
    expect(types).toEqual(new Set(['int16', 'float32']));
  });

  it('puts organs where they are in a patient, whatever the stored orientation', () => {
    for (const orientation of ['RAS', 'LPS', 'PLS', 'LAI']) {
      const p = generatePhantom(5, { geometry: { ...SMALL, orientations: [orientation], slices: [48, 48] } });
      // Place the phantom in patient terms: world minus the trunk centre (the body outline's centroid).
      const stats = tissueStats(p);
      const body = stats('skin').centroid;
      const rel = (t: TissueName) => stats(t).centroid.map((c, w) => c - body[w]);
      const liver = rel('liver');
      const spleen = rel('spleen');
      expect(liver[0]).toBeGreaterThan(0); // RAS world: +x is the patient's right
      expect(spleen[0]).toBeLessThan(0);
      expect(rel('cancellous')[1]).toBeLessThan(liver[1]); // the spine lies posterior to the liver
      expect(rel('lung')[2]).toBeGreaterThan(rel('kidneyCortex')[2]); // lungs above the kidneys
    }
  });

  it('gives tissues realistic Hounsfield units with noise', () => {
    const p = generatePhantom(3, { geometry: SMALL, contrast: true, noiseHu: [15, 15] });
    const plain = generatePhantom(3, { geometry: SMALL, contrast: false, noiseHu: [15, 15] });
    const stats = tissueStats(p);
    const near = (tissue: TissueName, hu: number, tol: number) => expect(Math.abs(stats(tissue).mean - hu)).toBeLessThan(tol);
    near('air', -1000, 15); // clamped at -1024 below, so a little above -1000
    near('fat', -100, 10);
    near('liver', 110, 10);
    near('lung', -850, 25);
    expect(tissueStats(plain)('liver').mean).toBeLessThan(80);
    expect(stats('blood').mean).toBeGreaterThan(150);
    expect(p.volume.data.reduce((a, b) => Math.max(a, b))).toBeGreaterThan(900);
    expect(p.volume.data.reduce((a, b) => Math.min(a, b))).toBeGreaterThanOrEqual(-1024);
    // Noise: neighbouring fat voxels differ by about sqrt(2) * 15 HU (the texture is smooth).
    const diffs: number[] = [];
    const fat = label('fat');
    for (let i = 0; i + 1 < p.labels.length; i++) if (p.labels[i] === fat && p.labels[i + 1] === fat) diffs.push(p.volume.data[i + 1] - p.volume.data[i]);
    const sd = Math.sqrt(diffs.reduce((s, d) => s + d * d, 0) / diffs.length);
    expect(sd).toBeGreaterThan(15 * Math.SQRT2 * 0.85);
    expect(sd).toBeLessThan(15 * Math.SQRT2 * 1.25);
    expect(TISSUES[0].name).toBe('air');
  });

  it('is an adult abdomen: its foreground box (the abdomen window > 0) is 300-350 x 220-260 mm and >= 150 mm long', () => {
    // The old default (a trunk shrunk into a small field) gave about 180 x 105 mm after the abdomen chain; real
    // abdominal CTs fill upstream's 288 x 288 x 96 mm sampling region across. The box is measured on the RAS
    // scanner grid (CropForegroundd's box, before the 1.5 mm resampling, which only rounds it).
    for (const seed of [0, 1, 2]) {
      const p = generatePhantom(seed);
      expect(p.scale).toBeCloseTo(1, 6);
      const ras = orientRas(p.volume);
      const { start, end } = foregroundBox(scaleIntensityRange(ras, FAMILY_PARAMS.abdomen.window));
      const spacing = [0, 1, 2].map((a) => Math.hypot(ras.affine[a], ras.affine[4 + a], ras.affine[8 + a]));
      const mm = [0, 1, 2].map((a) => (end[a] - start[a]) * spacing[a]);
      expect(mm[0]).toBeGreaterThanOrEqual(295);
      expect(mm[0]).toBeLessThanOrEqual(355);
      expect(mm[1]).toBeGreaterThanOrEqual(215);
      expect(mm[1]).toBeLessThanOrEqual(265);
      expect(mm[2]).toBeGreaterThanOrEqual(150);
      const present = new Set(p.organs);
      for (const organ of ORGANS) expect(present.has(organLabel(organ))).toBe(true);
    }
  });

  it('labels organs where their tissues are, also after the preprocessing (resampled labels keep their HU)', () => {
    const p = generatePhantom(7, { contrast: true, geometry: { inPlaneSize: [96, 96], slices: [40, 48] } });
    const huOf = (t: TissueName) => TISSUES[label(t)].contrast;
    // On the scanner grid: every organ voxel holds one of its tissues.
    const tissuesOf: Partial<Record<OrganName, TissueName[]>> = {
      liver: ['liver', 'vein'],
      spleen: ['spleen'],
      'right kidney': ['kidneyCortex', 'kidneyMedulla', 'fluid'],
      aorta: ['blood'],
      pancreas: ['pancreas'],
    };
    for (const [organ, tissues] of Object.entries(tissuesOf) as [OrganName, TissueName[]][]) {
      const allowed = new Set(tissues.map(label));
      const value = organLabel(organ);
      let count = 0;
      let other = 0;
      for (let i = 0; i < p.organs.length; i++) {
        if (p.organs[i] !== value) continue;
        count++;
        if (!allowed.has(p.labels[i])) other++;
      }
      expect([organ, count > 100, other]).toEqual([organ, true, 0]);
    }
    // Through upstream's chain (nearest for the label, bilinear for the image, the image's foreground box): the
    // interior of each organ's label (the voxel and its six neighbours carry it) holds the organ's CT numbers.
    const { image, label: organs } = preprocessSegmentation(p.volume, { ...p.volume, data: Float32Array.from(p.organs) }, 'abdomen');
    expect(organs.shape).toEqual(image.shape);
    const { aMin, aMax } = FAMILY_PARAMS.abdomen.window;
    const [nx, ny, nz] = image.shape;
    const organHu = (organ: OrganName, shift = 0): { inside: number; count: number } => {
      const value = organLabel(organ);
      const [lo, hi] = [Math.min(...tissuesOf[organ]!.map(huOf)) - 60, Math.max(...tissuesOf[organ]!.map(huOf)) + 60];
      let inside = 0;
      let count = 0;
      for (let x = 1; x + 1 < nx; x++)
        for (let y = 1; y + 1 < ny; y++)
          for (let z = 1; z + 1 < nz; z++) {
            const i = (x * ny + y) * nz + z;
            const ring = [i, i - 1, i + 1, i - nz, i + nz, i - ny * nz, i + ny * nz];
            if (!ring.every((j) => organs.data[j] === value)) continue;
            const j = i + shift * ny * nz; // `shift` voxels along x: a label that is off must fail this check
            if (j >= image.data.length) continue;
            count++;
            const hu = aMin + image.data[j] * (aMax - aMin);
            if (hu >= Math.max(lo, aMin) && hu <= Math.min(hi, aMax)) inside++;
          }
      return { inside: inside / count, count };
    };
    for (const organ of Object.keys(tissuesOf) as OrganName[]) {
      const { inside, count } = organHu(organ);
      expect(count).toBeGreaterThan(50);
      expect(inside).toBeGreaterThan(0.95);
    }
    expect(organHu('aorta', 12).inside).toBeLessThan(0.5);
  });

  it('rejects bad options with a clear error', () => {
    expect(() => generatePhantom(1, { geometry: { inPlaneSize: [90, 20] } })).toThrow(PhantomOptionError);
    expect(() => generatePhantom(1, { geometry: { bodyFill: [0.5, 1.2] } })).toThrow(/body fill/);
    expect(() => generatePhantom(1, { geometry: { orientations: ['RAX'] } })).toThrow(/orientation 'RAX'/);
    expect(() => generatePhantom(1, { noiseHu: [-1, 3] })).toThrow(/noise range/);
  });
});

describe('phantom dataset', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-phantom-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes NIfTI files and a Decathlon dataset.json that read back exactly', () => {
    const options = { count: 3, seed: 9, validation: 1, phantom: { geometry: SMALL } };
    const json = writePhantomDataset(dir, options);
    expect(json).toBe(path.join(dir, 'dataset.json'));
    const training = loadDecathlonList(json);
    const validation = loadDecathlonList(json, { key: 'validation' });
    expect(training.map((f) => path.relative(dir, f))).toEqual(['imagesTr/phantom_000.nii.gz', 'imagesTr/phantom_001.nii.gz']);
    expect(validation.map((f) => path.relative(dir, f))).toEqual(['imagesTr/phantom_002.nii.gz']);
    const dataset = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(dataset.labels).toEqual(organLabelTable());
    expect(dataset.labels).toMatchObject({ '0': 'background', '1': 'liver', '2': 'spleen', '3': 'right kidney', '4': 'left kidney', '5': 'aorta' });
    expect(dataset.numTraining).toBe(2);
    expect([...dataset.training, ...dataset.validation]).toEqual(
      ['000', '001', '002'].map((n) => ({ image: `./imagesTr/phantom_${n}.nii.gz`, label: `./labelsTr/phantom_${n}.nii.gz` })),
    );
    [...training, ...validation].forEach((file, i) => {
      const expected = generatePhantom(phantomSeed(9, i), options.phantom);
      const { volume, header } = loadVolume(file);
      expect(volume.shape).toEqual(expected.volume.shape);
      expect(bytes(volume.data).equals(bytes(expected.volume.data))).toBe(true);
      volume.affine.forEach((v, k) => expect(v).toBeCloseTo(expected.volume.affine[k], 5));
      expect(header.datatypeName).toBe(expected.storedType);
      const labels = loadVolume(path.join(dir, [...dataset.training, ...dataset.validation][i].label));
      expect(labels.header.datatypeName).toBe('uint8');
      expect(labels.volume.shape).toEqual(volume.shape);
      expect(labels.volume.affine).toEqual(volume.affine);
      expect(Array.from(labels.volume.data)).toEqual(Array.from(expected.organs));
    });
    expect(fs.readdirSync(path.join(dir, 'imagesTr')).length).toBe(3);
    expect(fs.readdirSync(path.join(dir, 'labelsTr')).length).toBe(3);
  });

  it('reuses a complete dataset made with the same options and rewrites otherwise', () => {
    const options = { count: 2, seed: 4, phantom: { geometry: TINY } };
    const json = ensurePhantomDataset(dir, options);
    const file = path.join(dir, 'imagesTr/phantom_001.nii.gz');
    fs.writeFileSync(file, 'changed');
    expect(ensurePhantomDataset(dir, options)).toBe(json);
    expect(fs.readFileSync(file, 'utf8')).toBe('changed');
    fs.rmSync(file);
    ensurePhantomDataset(dir, options);
    expect(loadVolume(file).volume.shape.length).toBe(3);
    fs.rmSync(path.join(dir, 'labelsTr/phantom_000.nii.gz'));
    ensurePhantomDataset(dir, options);
    expect(loadVolume(path.join(dir, 'labelsTr/phantom_000.nii.gz')).header.datatypeName).toBe('uint8');
    ensurePhantomDataset(dir, { ...options, seed: 5 });
    expect(JSON.parse(fs.readFileSync(json, 'utf8')).phantom.seed).toBe(5);
  });

  it('rejects bad counts and unwritable folders with a clear error', () => {
    expect(() => writePhantomDataset(dir, { count: 0, seed: 1 })).toThrow(PhantomDatasetError);
    expect(() => writePhantomDataset(dir, { count: 2, seed: 1, validation: 2 })).toThrow(/validation count/);
    expect(() => writePhantomDataset(dir, { count: 2, seed: 1.5 })).toThrow(/seed must be a whole number/);
    const blocker = path.join(dir, 'file');
    fs.writeFileSync(blocker, '');
    expect(() => writePhantomDataset(path.join(blocker, 'sub'), { count: 1, seed: 1 })).toThrow(/cannot write the phantom dataset/);
  });
});
