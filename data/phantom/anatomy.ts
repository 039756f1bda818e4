import type { Rng } from '../../common/rng';
import { Capsule, Ellipsoid, EllipticCylinder, Slab, type Shape, type Vec3 } from './shapes';
import type { OrganName } from './organs';
import type { TissueName } from './tissues';

/** One step of drawing the phantom: set `tissue` inside `shape`, where the current tissue is one of `over`. */
export interface PaintOp {
  readonly shape: Shape;
  readonly tissue: TissueName;
  readonly over?: readonly TissueName[];
  /** The organ whose label the painted voxels get; none: background. */
  readonly organ?: OrganName;
}

/** The trunk of one simulated adult, in real-size patient millimetres (RAS, origin at the trunk's centre). */
export interface Anatomy {
  /** Half width (left-right) and half depth (anterior-posterior) of the body outline. */
  readonly halfWidth: number;
  readonly halfDepth: number;
  /** Superior-inferior extent of the trunk. */
  readonly zMin: number;
  readonly zMax: number;
  /** Range of the superior end of an abdominal scan: just above the liver's dome, so the lung bases show. */
  readonly abdomenTop: readonly [number, number];
  /** Paint operations in order: later ones draw over earlier ones. */
  readonly ops: readonly PaintOp[];
}

const SOFT: readonly TissueName[] = ['visceralFat'];
const BODY: readonly TissueName[] = [
  'skin', 'fat', 'muscle', 'visceralFat', 'lung', 'blood', 'vein', 'myocardium', 'liver', 'spleen', 'pancreas',
  'kidneyCortex', 'kidneyMedulla', 'gutWall', 'fluid', 'gas', 'feces', 'disc',
];

/**
 * A random adult trunk: body wall (skin, subcutaneous fat, muscle), chest (lungs with vessels, heart), abdomen
 * (liver, spleen, stomach, pancreas, kidneys, bowel, bladder), great vessels and the skeleton (spine, ribs,
 * sternum, pelvis, femoral heads), with individual sizes, fat thickness and organ positions. Adult size: the body
 * is 300 to 350 mm wide and 220 to 260 mm deep.
 */
export function randomAnatomy(rng: Rng): Anatomy {
  const vary = (v: number, frac: number): number => v * (1 + frac * (2 * rng.uniform() - 1));
  const shift = (v: number, mm: number): number => v + mm * (2 * rng.uniform() - 1);
  const halfWidth = vary(162, 0.08);
  const halfDepth = vary(120, 0.08);
  const zMin = -340;
  const zMax = 310;
  const fatMm = 6 + 28 * rng.uniform();
  const muscleMm = vary(12, 0.3);
  const cw = halfWidth - 2 - fatMm - muscleMm; // abdominal / thoracic cavity half-axes
  const cd = halfDepth - 2 - fatMm - muscleMm;
  // Organ layout is written for a cavity of 136 x 85 mm and stretched to this body's cavity.
  const sx = cw / 136;
  const sy = cd / 85;
  const at = (x: number, y: number, z: number, mm = 6): Vec3 => [shift(x * sx, mm), shift(y * sy, mm), shift(z, mm)];
  const size = (rx: number, ry: number, rz: number): Vec3 => [vary(rx * sx, 0.1), vary(ry * sy, 0.1), vary(rz, 0.1)];
  const ops: PaintOp[] = [];
  const add = (shape: Shape, tissue: TissueName, over?: readonly TissueName[], organ?: OrganName): void => {
    ops.push({ shape, tissue, over, organ });
  };
  /** A hollow organ: wall, then contents; `gasAbove` fills the part anterior of that y (gas rises in a supine patient). */
  const hollow = (outer: Ellipsoid | Capsule, inner: Shape, content: TissueName, gasAbove?: number, organ?: OrganName): void => {
    add(outer, 'gutWall', SOFT, organ);
    add(inner, content, ['gutWall'], organ);
    if (gasAbove !== undefined) add(new Slab(inner, 1, gasAbove, Infinity), 'gas', [content], organ);
  };
  const bone = (outer: Ellipsoid, cortexMm: number): void => {
    add(outer, 'cortical', BODY);
    add(outer.shrunk(cortexMm), 'cancellous', ['cortical']);
  };

  const body = new EllipticCylinder(0, 0, halfWidth, halfDepth, zMin, zMax);
  add(body, 'skin');
  add(body.shrunk(2), 'fat');
  add(body.shrunk(2 + fatMm), 'muscle');
  add(body.shrunk(2 + fatMm + muscleMm), 'visceralFat');

  const yVb = -cd + 42; // centre of the vertebral bodies
  for (const side of [-1, 1]) {
    add(new Capsule([side * 38, yVb - 40, zMax], [side * 38, yVb - 40, zMin + 60], 24), 'muscle', ['fat', 'visceralFat']);
    add(new Capsule([side * 30, yVb + 2, -20], [side * 58, yVb + 18, -250], vary(17, 0.15)), 'muscle', SOFT);
  }

  // Chest: lungs (the right one sits higher, over the liver dome), vessels fanning out from the hila, heart.
  for (const side of [-1, 1]) {
    const bottom = side > 0 ? shift(75, 10) : shift(45, 10);
    const lung = new Ellipsoid([side * 74 * sx, 0, bottom + 165], [66 * sx, 86 * sy, 165]);
    add(lung, 'lung', SOFT);
    const hilum: Vec3 = [side * 38 * sx, 0, 150];
    for (let b = 0; b < 10; b++) {
      const end: Vec3 = [side * (40 + 70 * rng.uniform()) * sx, (-70 + 140 * rng.uniform()) * sy, bottom + 20 + 240 * rng.uniform()];
      add(new Capsule(hilum, end, vary(3.5, 0.3)), 'vein', ['lung']);
      const mid: Vec3 = [(hilum[0] + end[0]) / 2, (hilum[1] + end[1]) / 2, (hilum[2] + end[2]) / 2];
      const twig: Vec3 = [end[0] + side * 25 * rng.uniform(), end[1] + 40 * (rng.uniform() - 0.5), end[2] + 50 * (rng.uniform() - 0.5)];
      add(new Capsule(mid, twig, vary(2, 0.3)), 'vein', ['lung']);
    }
  }
  add(new Capsule([0, 12 * sy, 150], [0, 25 * sy, zMax], 9), 'gutWall', ['visceralFat', 'lung']);
  add(new Capsule([0, 12 * sy, 150], [0, 25 * sy, zMax], 7), 'gas', ['gutWall']); // trachea
  const heart = new Ellipsoid(at(-15, 22, 105), size(55, 45, 50), 0.5);
  add(heart, 'myocardium', ['visceralFat', 'lung']);
  add(heart.shrunk(10), 'blood', ['myocardium']);

  // Upper abdomen.
  add(new Ellipsoid(at(68, 5, 25), size(76, 76, 80)), 'liver', ['visceralFat', 'lung'], 'liver');
  add(new Ellipsoid(at(-5, 38, 45), size(55, 32, 35)), 'liver', ['visceralFat', 'lung'], 'liver');
  const gallbladder = new Ellipsoid(at(48, 38, -5), size(15, 13, 35), 0.3); // in the fossa under the liver
  add(gallbladder, 'gutWall', ['visceralFat', 'liver'], 'gallbladder');
  add(gallbladder.shrunk(2), 'fluid', ['gutWall'], 'gallbladder');
  add(new Ellipsoid(at(-100, -35, 40), size(28, 55, 55), 0.6), 'spleen', SOFT, 'spleen');
  const stomachCentre = at(-50, 35, 45);
  const stomach = new Ellipsoid(stomachCentre, size(45, 38, 48), -0.4);
  hollow(stomach, stomach.shrunk(4), 'fluid', stomachCentre[1] + shift(5, 15), 'stomach');
  add(new Ellipsoid(at(-15, 2, -5), size(65, 14, 16), 0.25), 'pancreas', SOFT, 'pancreas');
  for (const side of [-1, 1]) {
    const organ = side > 0 ? 'right kidney' : 'left kidney'; // +x is the patient's right
    const kidney = new Ellipsoid(at(side * 72, (yVb + 8) / sy, side > 0 ? -85 : -70, 4), size(28, 25, 55), side * 0.35);
    add(kidney, 'kidneyCortex', SOFT, organ);
    add(kidney.shrunk(7), 'kidneyMedulla', ['kidneyCortex'], organ);
    add(new Ellipsoid(at(side * 58, (yVb + 14) / sy, side > 0 ? -85 : -70, 2), [9, 7, 16]), 'fluid', ['kidneyMedulla'], organ); // renal pelvis
  }

  // Lower abdomen and pelvis: small-bowel loops, colon frame, bladder.
  for (let b = 0; b < 14; b++) {
    const a: Vec3 = [(-80 + 160 * rng.uniform()) * sx, (-5 + 65 * rng.uniform()) * sy, -250 + 190 * rng.uniform()];
    const t = 2 * Math.PI * rng.uniform();
    const len = 40 + 30 * rng.uniform();
    const e: Vec3 = [a[0] + len * Math.cos(t), a[1] + 0.3 * len * Math.sin(t), a[2] + 0.6 * len * (rng.uniform() - 0.5)];
    const r = 10 + 4 * rng.uniform();
    const u = rng.uniform();
    hollow(new Capsule(a, e, r), new Capsule(a, e, r - 2.5), u < 0.75 ? 'fluid' : 'gas');
  }
  const colon: Vec3[] = [at(-20, 20, -250), at(-95, 0, -200), at(-95, 5, -40), at(0, 55, -75), at(95, 15, -40), at(95, 10, -200)];
  for (let s = 0; s + 1 < colon.length; s++) {
    const r = vary(20, 0.15);
    const inner = new Capsule(colon[s], colon[s + 1], r - 3);
    hollow(new Capsule(colon[s], colon[s + 1], r), inner, 'feces', Math.min(colon[s][1], colon[s + 1][1]) + shift(8, 8));
  }
  const bladder = new Ellipsoid(at(0, 40, -290), size(45, 35, 40));
  hollow(bladder, bladder.shrunk(3), 'fluid');

  // Great vessels.
  const ya = yVb + 34;
  const aorta: Vec3[] = [at(-5, 25, 120, 3), [0, 15 * sy, 200], [-15, ya, 205], [-12, ya, -170]];
  // The great vessels lie behind the pancreas and the bowel: they are drawn over them where the layouts meet.
  const behind: TissueName[] = ['visceralFat', 'pancreas', 'gutWall', 'fluid', 'gas', 'feces'];
  for (let s = 0; s + 1 < aorta.length; s++) {
    add(new Capsule(aorta[s], aorta[s + 1], s === 0 ? 14 : 11.5), 'blood', [...behind, 'lung', 'myocardium'], 'aorta');
  }
  for (const side of [-1, 1]) add(new Capsule([-12, ya, -170], [side * 55 * sx, ya + 10, -270], 7), 'blood', SOFT); // iliac arteries
  add(new Capsule([22, yVb + 32, -170], [25, yVb + 40, 90], 11), 'vein', [...behind, 'liver', 'lung'], 'inferior vena cava');
  add(new Capsule([10, 0, -10], [50 * sx, 5, 20], 7), 'vein', ['visceralFat', 'liver', 'pancreas']); // portal vein
  for (let b = 0; b < 4; b++) {
    // Hepatic veins: inside the liver, so part of its label (as organ annotations usually include them).
    const end: Vec3 = [(20 + 90 * rng.uniform()) * sx, (-20 + 60 * rng.uniform()) * sy, 10 + 70 * rng.uniform()];
    add(new Capsule([25, yVb + 40, 85], end, 3 + 2 * rng.uniform()), 'vein', ['liver'], 'liver');
  }

  // Skeleton: spine with discs, posterior elements and canal; ribs; sternum; pelvis and femoral heads.
  add(new EllipticCylinder(0, yVb, 22, 18, -250, zMax), 'disc', BODY);
  for (let zc = -236; zc < zMax; zc += 32) {
    bone(new Ellipsoid([0, yVb, zc], [22, 18, 13.5]), 2.5);
    for (const side of [-1, 1]) {
      add(new Capsule([side * 12, yVb - 14, zc], [side * 13, yVb - 36, zc], 5.5), 'rib', BODY);
      add(new Capsule([side * 12, yVb - 33, zc], [side * (zc < -40 ? 42 : 28), yVb - 36, zc], 4.5), 'rib', BODY);
    }
    add(new Capsule([0, yVb - 38, zc], [0, yVb - 62, zc - 12], 5.5), 'rib', BODY);
  }
  add(new EllipticCylinder(0, yVb - 31, 10, 8.5, -250, zMax), 'csf');
  const rx = cw + muscleMm / 2;
  const ry = cd + muscleMm / 2;
  for (let zr = -40; zr < zMax - 20; zr += 27) {
    for (const side of [-1, 1]) {
      let prev: Vec3 | undefined;
      for (let s = 0; s <= 8; s++) {
        const t = 0.3 + (2.1 * s) / 8;
        const p: Vec3 = [side * rx * Math.sin(t), -ry * Math.cos(t), zr - (40 * s) / 8];
        if (prev) add(new Capsule(prev, p, 5), 'rib', BODY);
        prev = p;
      }
    }
  }
  add(new EllipticCylinder(0, cd + muscleMm / 2, 16, 6, 40, 215), 'rib', BODY);
  for (const side of [-1, 1]) {
    bone(new Ellipsoid([side * 100 * sx, -20, -220], [7, 55 * sy, 48], side * 0.5), 2);
    bone(new Ellipsoid([side * 88 * sx, 5, -318], [24, 24, 24]), 3);
    bone(new Ellipsoid([side * 50 * sx, 45 * sy, -322], [40, 9, 10], side * -0.55), 2.5);
  }
  bone(new Ellipsoid([0, yVb - 12, -248], [45, 17, 48]), 3);
  return { halfWidth, halfDepth, zMin, zMax, abdomenTop: [80, 125], ops };
}
