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

/**
 * A PNG of an image with its label map on the same grid (both RAS arrays): the middle axial slice beside the
 * middle coronal slice, at `mmPerPixel` whatever the voxel size (nearest voxel), grey in `window`, each label
 * blended in its colour, and a legend naming the labels present (`names[l]` for label l). Shown as radiologists
 * read them: the patient's right on the left, anterior (axial) and superior (coronal) at the top.
 */
export function renderLabelSlices(image: Volume, labels: Volume, names: Readonly<Record<string, string>>, window: readonly [number, number], mmPerPixel = 1.5): Buffer {
  if (labels.shape.some((n, a) => n !== image.shape[a])) {
    throw new RangeError(`label grid ${labels.shape.join('x')} differs from the image grid ${image.shape.join('x')}`);
  }
  const [nx, ny, nz] = image.shape;
  const spacing = columnNorms(image.affine);
  const pixels = image.shape.map((n, a) => Math.max(1, Math.round((n * spacing[a]) / mmPerPixel)));
  const index = (p: number, a: number): number => Math.min(image.shape[a] - 1, Math.floor((p * mmPerPixel) / spacing[a]));
  const present = [...new Set(labels.data)].filter((l) => l > 0).sort((a, b) => a - b);
  const top = PAD * 2 + GLYPH_HEIGHT;
  const legend = top + Math.max(pixels[1], pixels[2]) + PAD;
  const width = PAD * 3 + pixels[0] * 2;
  const canvas = new Canvas(width, legend + Math.max(present.length, 1) * (GLYPH_HEIGHT + 6) + PAD, [16, 16, 20]);
  const draw = (left: number, rows: number, voxel: (c: number, r: number) => number): void => {
    canvas.drawGray(left, top, pixels[0], rows, 1, window, (c, r) => image.data[voxel(c, r)]);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < pixels[0]; c++) {
        const l = labels.data[voxel(c, r)];
        if (l <= 0) continue;
        const p = ((top + r) * width + left + c) * 3;
        const colour = labelColour(l);
        for (let k = 0; k < 3; k++) canvas.pixels[p + k] = Math.round((1 - ALPHA) * canvas.pixels[p + k] + ALPHA * colour[k]);
      }
    }
  };
  const [z, y] = [Math.floor(nz / 2), Math.floor(ny / 2)];
  const x = (c: number): number => nx - 1 - index(c, 0);
  canvas.text(PAD, PAD, `AXIAL Z=${z}`, TEXT);
  draw(PAD, pixels[1], (c, r) => (x(c) * ny + ny - 1 - index(r, 1)) * nz + z);
  canvas.text(PAD * 2 + pixels[0], PAD, `CORONAL Y=${y}`, TEXT);
  draw(PAD * 2 + pixels[0], pixels[2], (c, r) => (x(c) * ny + y) * nz + nz - 1 - index(r, 2));
  present.forEach((l, i) => {
    const row = legend + i * (GLYPH_HEIGHT + 6);
    canvas.fillRect(PAD, row, GLYPH_HEIGHT, GLYPH_HEIGHT, labelColour(l));
    canvas.text(PAD + GLYPH_HEIGHT + 6, row, `${l} ${(names[String(l)] ?? '').toUpperCase()}`, TEXT);
  });
  return canvas.png();
}
