import { columnNorms } from '../transforms/matrix';
import type { Volume } from '../volume';
import { Canvas, type Rgb } from './canvas';
import { GLYPH_HEIGHT } from './font';

/** Colours of labels 1, 2, ... (repeating after the last). */
const PALETTE: readonly Rgb[] = [
  [230, 90, 60], [70, 160, 240], [250, 200, 40], [120, 210, 90], [240, 60, 170], [60, 220, 210], [170, 110, 240], [250, 140, 20], [150, 230, 160],
];
const PAD = 12;
const ALPHA = 0.45;
const TEXT: Rgb = [220, 220, 220];

export function labelColour(label: number): Rgb {
  return PALETTE[(label - 1) % PALETTE.length];
}

/** The voxel the three slices pass through: the centre of mass of the labelled voxels, the grid's middle without any. */
export function labelCentre(labels: Volume): [number, number, number] {
  const [, ny, nz] = labels.shape;
  const sum = [0, 0, 0];
  let count = 0;
  for (let i = 0; i < labels.data.length; i++) {
    if (labels.data[i] <= 0) continue;
    sum[0] += Math.floor(i / (ny * nz));
    sum[1] += Math.floor(i / nz) % ny;
    sum[2] += i % nz;
    count++;
  }
  return count ? [0, 1, 2].map((a) => Math.round(sum[a] / count)) as [number, number, number] : labels.shape.map((n) => Math.floor(n / 2)) as [number, number, number];
}

export interface LabelSlicesOptions {
  /** The voxel the axial, coronal and sagittal slices pass through; default labelCentre. */
  readonly centre?: readonly [number, number, number];
  /** Millimetres per pixel whatever the voxel size (nearest voxel); default 1.5, finer for small grids (256 pixels). */
  readonly mmPerPixel?: number;
}

/**
 * A PNG of an image with its label map on the same grid (both RAS arrays): the axial, coronal and sagittal slices
 * through `centre`, grey in `window`, each label blended in its colour, and a legend naming the labels present
 * (`names[l]` for label l, else "class l"). Shown as radiologists read them: the patient's right on the left
 * (axial, coronal), anterior on the left (sagittal), anterior (axial) and superior (coronal, sagittal) at the top.
 */
export function renderLabelSlices(image: Volume, labels: Volume, names: Readonly<Record<string, string>>, window: readonly [number, number], options: LabelSlicesOptions = {}): Buffer {
  if (labels.shape.some((n, a) => n !== image.shape[a])) {
    throw new RangeError(`label grid ${labels.shape.join('x')} differs from the image grid ${image.shape.join('x')}`);
  }
  const [nx, ny, nz] = image.shape;
  const spacing = columnNorms(image.affine);
  const mmPerPixel = options.mmPerPixel ?? Math.min(1.5, Math.max(...image.shape.map((n, a) => n * spacing[a])) / 256);
  const pixels = image.shape.map((n, a) => Math.max(1, Math.round((n * spacing[a]) / mmPerPixel)));
  const index = (p: number, a: number): number => Math.min(image.shape[a] - 1, Math.floor((p * mmPerPixel) / spacing[a]));
  const present = [...new Set(labels.data)].filter((l) => l > 0).sort((a, b) => a - b);
  const top = PAD * 2 + GLYPH_HEIGHT;
  const legend = top + Math.max(pixels[1], pixels[2]) + PAD;
  const width = PAD * 4 + pixels[0] * 2 + pixels[1];
  const canvas = new Canvas(width, legend + Math.max(present.length, 1) * (GLYPH_HEIGHT + 6) + PAD, [16, 16, 20]);
  const draw = (left: number, cols: number, rows: number, voxel: (c: number, r: number) => number): void => {
    canvas.drawGray(left, top, cols, rows, 1, window, (c, r) => image.data[voxel(c, r)]);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const l = labels.data[voxel(c, r)];
        if (l <= 0) continue;
        const p = ((top + r) * width + left + c) * 3;
        const colour = labelColour(l);
        for (let k = 0; k < 3; k++) canvas.pixels[p + k] = Math.round((1 - ALPHA) * canvas.pixels[p + k] + ALPHA * colour[k]);
      }
    }
  };
  const [cx, cy, cz] = options.centre ?? labelCentre(labels);
  const x = (c: number): number => nx - 1 - index(c, 0);
  const y = (c: number): number => ny - 1 - index(c, 1);
  const z = (r: number): number => nz - 1 - index(r, 2);
  canvas.text(PAD, PAD, `AXIAL Z=${cz}`, TEXT);
  draw(PAD, pixels[0], pixels[1], (c, r) => (x(c) * ny + y(r)) * nz + cz);
  const coronal = PAD * 2 + pixels[0];
  canvas.text(coronal, PAD, `CORONAL Y=${cy}`, TEXT);
  draw(coronal, pixels[0], pixels[2], (c, r) => (x(c) * ny + cy) * nz + z(r));
  const sagittal = PAD * 3 + pixels[0] * 2;
  canvas.text(sagittal, PAD, `SAGITTAL X=${cx}`, TEXT);
  draw(sagittal, pixels[1], pixels[2], (c, r) => (cx * ny + y(c)) * nz + z(r));
  present.forEach((l, i) => {
    const row = legend + i * (GLYPH_HEIGHT + 6);
    canvas.fillRect(PAD, row, GLYPH_HEIGHT, GLYPH_HEIGHT, labelColour(l));
    canvas.text(PAD + GLYPH_HEIGHT + 6, row, `${l} ${(names[String(l)] ?? `class ${l}`).toUpperCase()}`, TEXT);
  });
  return canvas.png();
}
