/**
 * Solid shapes in patient millimetres (x to the patient's right, y anterior, z superior: RAS), each with an
 * axis-aligned bounding box so that rasterizing visits only the voxels that can be inside.
 */
export type Vec3 = readonly [number, number, number];

export interface Shape {
  readonly lo: Vec3;
  readonly hi: Vec3;
  contains(x: number, y: number, z: number): boolean;
}

/** An ellipsoid, optionally turned by `angle` radians about the z axis. */
export class Ellipsoid implements Shape {
  readonly lo: Vec3;
  readonly hi: Vec3;
  private readonly cos: number;
  private readonly sin: number;

  constructor(
    private readonly center: Vec3,
    private readonly radii: Vec3,
    angle = 0,
  ) {
    this.cos = Math.cos(angle);
    this.sin = Math.sin(angle);
    const ex = Math.hypot(radii[0] * this.cos, radii[1] * this.sin);
    const ey = Math.hypot(radii[0] * this.sin, radii[1] * this.cos);
    this.lo = [center[0] - ex, center[1] - ey, center[2] - radii[2]];
    this.hi = [center[0] + ex, center[1] + ey, center[2] + radii[2]];
  }

  contains(x: number, y: number, z: number): boolean {
    const dx = x - this.center[0];
    const dy = y - this.center[1];
    const u = (dx * this.cos + dy * this.sin) / this.radii[0];
    const v = (-dx * this.sin + dy * this.cos) / this.radii[1];
    const w = (z - this.center[2]) / this.radii[2];
    return u * u + v * v + w * w <= 1;
  }

  /** The same ellipsoid with every radius reduced by `by` millimetres (a wall of that thickness stays outside). */
  shrunk(by: number): Ellipsoid {
    const r = this.radii.map((v) => Math.max(v - by, 0.1)) as unknown as Vec3;
    return new Ellipsoid(this.center, r, Math.atan2(this.sin, this.cos));
  }
}

/** An elliptic cylinder along z from `z0` to `z1`, its cross-section centred at (cx, cy). */
export class EllipticCylinder implements Shape {
  readonly lo: Vec3;
  readonly hi: Vec3;

  constructor(
    private readonly cx: number,
    private readonly cy: number,
    private readonly rx: number,
    private readonly ry: number,
    z0: number,
    z1: number,
  ) {
    this.lo = [cx - rx, cy - ry, z0];
    this.hi = [cx + rx, cy + ry, z1];
  }

  contains(x: number, y: number, z: number): boolean {
    if (z < this.lo[2] || z > this.hi[2]) return false;
    const u = (x - this.cx) / this.rx;
    const v = (y - this.cy) / this.ry;
    return u * u + v * v <= 1;
  }

  shrunk(by: number): EllipticCylinder {
    return new EllipticCylinder(this.cx, this.cy, Math.max(this.rx - by, 0.1), Math.max(this.ry - by, 0.1), this.lo[2], this.hi[2]);
  }
}

/** All points within `radius` of the segment from `a` to `b` (a tube with round ends: vessels, ribs, bowel). */
export class Capsule implements Shape {
  readonly lo: Vec3;
  readonly hi: Vec3;
  private readonly d: Vec3;
  private readonly dd: number;

  constructor(
    private readonly a: Vec3,
    b: Vec3,
    private readonly radius: number,
  ) {
    this.d = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
    this.dd = this.d[0] ** 2 + this.d[1] ** 2 + this.d[2] ** 2 || 1e-12;
    this.lo = [0, 1, 2].map((i) => Math.min(a[i], b[i]) - radius) as unknown as Vec3;
    this.hi = [0, 1, 2].map((i) => Math.max(a[i], b[i]) + radius) as unknown as Vec3;
  }

  contains(x: number, y: number, z: number): boolean {
    const px = x - this.a[0];
    const py = y - this.a[1];
    const pz = z - this.a[2];
    let t = (px * this.d[0] + py * this.d[1] + pz * this.d[2]) / this.dd;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    const qx = px - t * this.d[0];
    const qy = py - t * this.d[1];
    const qz = pz - t * this.d[2];
    return qx * qx + qy * qy + qz * qz <= this.radius * this.radius;
  }
}

/** The part of `shape` where `axis` lies between `min` and `max` (e.g. the gas above a fluid level). */
export class Slab implements Shape {
  readonly lo: Vec3;
  readonly hi: Vec3;

  constructor(
    private readonly shape: Shape,
    private readonly axis: 0 | 1 | 2,
    private readonly min: number,
    private readonly max: number,
  ) {
    const lo = [...shape.lo];
    const hi = [...shape.hi];
    lo[axis] = Math.max(lo[axis], min);
    hi[axis] = Math.min(hi[axis], max);
    this.lo = lo as unknown as Vec3;
    this.hi = hi as unknown as Vec3;
  }

  contains(x: number, y: number, z: number): boolean {
    const v = this.axis === 0 ? x : this.axis === 1 ? y : z;
    return v >= this.min && v <= this.max && this.shape.contains(x, y, z);
  }
}
