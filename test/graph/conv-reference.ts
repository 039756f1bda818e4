/**
 * Direct N-D convolution in float64, written from the ONNX Conv / ConvTranspose definitions, with the gradients
 * of sum(y * gy) accumulated tap by tap: the reference the ONNX Runtime results are compared with.
 */
export interface RefGeometry {
  readonly strides: readonly number[];
  /** ONNX layout: begins, then ends. */
  readonly pads: readonly number[];
  readonly dilations: readonly number[];
  readonly groups: number;
  /** ConvTranspose only. */
  readonly outputPadding?: readonly number[];
}

export type ConvKind = 'Conv' | 'ConvTranspose';

export interface RefResult {
  readonly y: Float64Array;
  readonly yShape: number[];
  readonly dx: Float64Array;
  readonly dw: Float64Array;
  readonly db: Float64Array;
}

export const product = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

/** Calls `visit` with every row-major multi-index of `shape`. */
function eachPosition(shape: readonly number[], visit: (index: readonly number[]) => void): void {
  const count = product(shape);
  const index = shape.map(() => 0);
  for (let k = 0; k < count; k++) {
    visit(index);
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++index[a] < shape[a]) break;
      index[a] = 0;
    }
  }
}

const flat = (index: readonly number[], shape: readonly number[]): number => index.reduce((acc, v, a) => acc * shape[a] + v, 0);

/**
 * Every tap (input element, weight element, output element) of a Conv with input `inShape`, weight
 * [Cout, Cin/G, ...k] and output spatial size `outSpatial`: out[n, co, j] += in[n, ci, j*s + t*d - padBegin] * w[co, c, t].
 */
function convTaps(
  inShape: readonly number[],
  wShape: readonly number[],
  outSpatial: readonly number[],
  g: RefGeometry,
  visit: (ii: number, wi: number, oi: number) => void,
): void {
  const [n, cin, ...spatial] = inShape;
  const [cout, cig, ...kernel] = wShape;
  const cog = cout / g.groups;
  const outShape = [n, cout, ...outSpatial];
  eachPosition([n, cout], ([b, co]) => {
    const group = Math.floor(co / cog);
    eachPosition(outSpatial, (j) => {
      const oi = flat([b, co, ...j], outShape);
      for (let c = 0; c < cig; c++) {
        eachPosition(kernel, (t) => {
          const i = j.map((jj, a) => jj * g.strides[a] + t[a] * g.dilations[a] - g.pads[a]);
          if (i.some((ii, a) => ii < 0 || ii >= spatial[a])) return;
          visit(flat([b, group * cig + c, ...i], [n, cin, ...spatial]), flat([co, c, ...t], wShape), oi);
        });
      }
    });
  });
}

export function outputShape(kind: ConvKind, xShape: readonly number[], wShape: readonly number[], g: RefGeometry): number[] {
  const [n, , ...spatial] = xShape;
  const r = spatial.length;
  const reach = (a: number) => g.dilations[a] * (wShape[a + 2] - 1);
  if (kind === 'Conv') {
    return [n, wShape[0], ...spatial.map((d, a) => Math.floor((d + g.pads[a] + g.pads[a + r] - reach(a) - 1) / g.strides[a]) + 1)];
  }
  const op = g.outputPadding ?? spatial.map(() => 0);
  return [n, wShape[1] * g.groups, ...spatial.map((d, a) => g.strides[a] * (d - 1) + op[a] + reach(a) + 1 - g.pads[a] - g.pads[a + r])];
}

/**
 * y = kind(x, w, b) and the gradients of sum(y * gy) (gy of y's shape). A ConvTranspose is the adjoint of the
 * Conv with the same weight read as [Cin, Cout/G, ...k], so its taps are that Conv's with input and output exchanged.
 */
export function reference(
  kind: ConvKind,
  x: Float64Array,
  xShape: readonly number[],
  w: Float64Array,
  wShape: readonly number[],
  b: Float64Array | null,
  g: RefGeometry,
  gy: Float64Array,
): RefResult {
  const yShape = outputShape(kind, xShape, wShape, g);
  const y = new Float64Array(product(yShape));
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  const tap = (xi: number, wi: number, yi: number) => {
    y[yi] += x[xi] * w[wi];
    dx[xi] += gy[yi] * w[wi];
    dw[wi] += gy[yi] * x[xi];
  };
  if (kind === 'Conv') convTaps(xShape, wShape, yShape.slice(2), g, tap);
  else convTaps(yShape, wShape, xShape.slice(2), g, (yi, wi, xi) => tap(xi, wi, yi));
  const channels = yShape[1];
  const per = product(yShape.slice(2));
  const db = new Float64Array(channels);
  for (let k = 0; k < y.length; k++) {
    const c = Math.floor(k / per) % channels;
    if (b) y[k] += b[c];
    db[c] += gy[k];
  }
  return { y, yShape, dx, dw, db };
}
