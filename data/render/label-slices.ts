import type { Volume } from '../volume';
import { Canvas, type Rgb } from './canvas';
import { GLYPH_HEIGHT } from './font';

/** Colours of labels 1, 2, ... (repeating after the last). */
const PALETTE: readonly Rgb[] = [
  [230, 90, 60], [70, 160, 240], [250, 200, 40], [120, 210, 90], [240, 60, 170], [60, 220, 210], [170, 110, 240], [250, 140, 20], [150, 230, 160],
];
const PAD = 12;
const ALPHA = 0.45;

export function labelColour(label: number): Rgb {
  return PALETTE[(label - 1) % PALETTE.length];
}

/**
 * A PNG of an image with its label map on the same grid (both RAS arrays): the axial slice `z` beside the coronal
 * slice `y` (default the middle ones), grey in `window`, each label blended in its colour, and a legend naming the
 * labels (`names[l]` for label l). Shown as radiologists read them: patient's right on the left, anterior (axial)
 * and superior (coronal) at the top.
 */
export function renderLabelSlices(
  image: Volume,
  labels: Volume,
  names: Readonly<Record<string, string>>,
  window: readonly [number, number],
  at: { z?: number; y?: number } = {},
): Buffer {
  const [nx, ny, nz] = image.shape;
  if (labels.shape.some((n, a) => n !== image.shape[a])) {
    throw new RangeError(`label grid ${labels.shape.join('x')} differs from the image grid ${image.shape.join('x')}`);
  }
  const z = at.z ?? Math.floor(nz / 2);
  const y = at.y ?? Math.floor(ny / 2);
  const present = [...new Set(labels.data)].filter((l) => l > 0).sort((a, b) => a - b);
  const legendRows = Math.max(present.length, 1);
  const width = PAD * 3 + nx * 2;
  const height = PAD * 3 + Math.max(ny, nz) + GLYPH_HEIGHT * 2 + legendRows * (GLYPH_HEIGHT + 6);
  const canvas = new Canvas(width, height, [16, 16, 20]);
  const at3 = (x: number, yy: number, zz: number): number => (x * ny + yy) * nz + zz;
  const draw = (left: number, top: number, rows: number, voxel: (c: number, r: number) => number): void => {
    canvas.drawGray(left, top, nx, rows, 1, window, (c, r) => image.data[voxel(c, r)]);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < nx; c++) {
        const l = labels.data[voxel(c, r)];
        if (l <= 0) continue;
        const p = ((top + r) * width + left + c) * 3;
        const colour = labelColour(l);
        for (let k = 0; k < 3; k++) canvas.pixels[p + k] = Math.round((1 - ALPHA) * canvas.pixels[p + k] + ALPHA * colour[k]);
      }
    }
  };
  const top = PAD * 2 + GLYPH_HEIGHT;
  canvas.text(PAD, PAD, `AXIAL Z=${z}`, [220, 220, 220]);
  draw(PAD, top, ny, (c, r) => at3(nx - 1 - c, ny - 1 - r, z));
  canvas.text(PAD * 2 + nx, PAD, `CORONAL Y=${y}`, [220, 220, 220]);
  draw(PAD * 2 + nx, top, nz, (c, r) => at3(nx - 1 - c, y, nz - 1 - r));
  present.forEach((l, i) => {
    const row = top + Math.max(ny, nz) + PAD + i * (GLYPH_HEIGHT + 6);
    canvas.fillRect(PAD, row, GLYPH_HEIGHT, GLYPH_HEIGHT, labelColour(l));
    canvas.text(PAD + GLYPH_HEIGHT + 6, row, `${l} ${(names[String(l)] ?? '').toUpperCase()}`, [220, 220, 220]);
  });
  return canvas.png();
}
