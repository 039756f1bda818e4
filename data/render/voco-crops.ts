import { writeBytesAtomically } from '../../common/atomic-file';
import { Rng } from '../../common/rng';
import type { Volume } from '../volume';
import type { CropAugment } from '../voco/augment';
import { DEFAULT_VOCO, regionShape, type VocoSamplingOptions } from '../voco/options';
import { sampleVoco, type VocoSample } from '../voco/sample';
import { Canvas, type Rgb } from './canvas';
import { GLYPH_HEIGHT, textWidth } from './font';

export interface PictureOptions {
  /** Values shown black..white; default [0, 1], the range of preprocessed volumes. */
  readonly window?: readonly [number, number];
}

const CROP_COLOURS: readonly Rgb[] = [
  [255, 90, 90], [90, 200, 255], [120, 240, 120], [255, 200, 60], [215, 130, 255], [255, 150, 205],
];
const GRID_COLOUR: Rgb = [230, 230, 120];
const TEXT: Rgb = [235, 235, 235];
const DIM_TEXT: Rgb = [160, 160, 160];
const BACKGROUND: Rgb = [24, 24, 28];
const PAD = 12;
const HEAT_CELL = 36;

/** Where the parts of the picture lie, in pixels (top-left corners). */
export interface PictureLayout {
  readonly width: number;
  readonly height: number;
  /** Screen pixels per voxel in the region panel and the random-crop views. */
  readonly zoom: number;
  readonly region: { readonly x: number; readonly y: number };
  /** Random crop n: its view and its label grid. */
  readonly crop: (n: number) => { readonly viewX: number; readonly viewY: number; readonly labelsX: number; readonly labelsY: number };
  /** Base crop (i, j), drawn at zoom 1 where it lies in the region. */
  readonly base: (i: number, j: number) => { readonly x: number; readonly y: number };
  /** Side of one cell of a label grid. */
  readonly labelCell: number;
}

export function pictureLayout(o: VocoSamplingOptions): PictureLayout {
  const { roi, grid } = o;
  const [rx] = regionShape(o);
  const zoom = roi <= 64 ? 2 : 1;
  const thumb = roi * zoom;
  const regionPx = rx * zoom;
  const lineH = GLYPH_HEIGHT + 4;
  const top = PAD + 2 * GLYPH_HEIGHT + 12;
  const rowH = thumb + 3 * lineH + 14;
  const right = PAD + regionPx + 24;
  const baseTitle = top + regionPx + 3 * lineH + 8;
  const baseTop = baseTitle + GLYPH_HEIGHT + 8;
  const baseCell = roi + 4;
  return {
    width: Math.max(right + thumb + 16 + grid * HEAT_CELL, PAD + grid * baseCell + 200) + PAD,
    height: Math.max(top + o.swBatchSize * rowH, baseTop + grid * baseCell) + PAD,
    zoom,
    region: { x: PAD, y: top },
    crop: (n) => ({ viewX: right, viewY: top + n * rowH + lineH, labelsX: right + thumb + 16, labelsY: top + n * rowH + lineH }),
    base: (i, j) => ({ x: PAD + (grid - 1 - i) * baseCell, y: baseTop + (grid - 1 - j) * baseCell }),
    labelCell: HEAT_CELL,
  };
}

/** Colour of a label grid cell holding `v` (dark blue at 0 to yellow at 1). */
export function heatColour(v: number): Rgb {
  return [Math.round(30 + 225 * v), Math.round(34 + 186 * v), Math.round(60 - 10 * v)];
}

/**
 * A PNG of what the model is given for one volume: the mid-slice (z) of the sampled region with the base-crop
 * grid and each random crop outlined; beside it, each random crop as the model sees it (augmented) with its
 * position labels as a small grid laid out like the base crops; below, the augmented base crops. Axial slices
 * of RAS arrays are shown as radiologists read them: the patient's right on the left, anterior at the top.
 */
export function renderVocoSample(volume: Volume, sample: VocoSample, o: VocoSamplingOptions = DEFAULT_VOCO, picture: PictureOptions = {}): Buffer {
  const window = picture.window ?? [0, 1];
  const { roi, grid } = o;
  const [rx, ry] = regionShape(o);
  const layout = pictureLayout(o);
  const { zoom } = layout;
  const thumb = roi * zoom;
  const regionPx = rx * zoom;
  const canvas = new Canvas(layout.width, layout.height, BACKGROUND);
  const { regionStart, cropStarts, imageAugments, baseAugments } = sample.layout;
  const midZ = Math.floor(roi / 2);

  canvas.text(PAD, PAD, `VOCO SAMPLE: REGION ${rx}X${ry}X${roi}`, TEXT, 2);
  canvas.text(PAD, PAD + 2 * GLYPH_HEIGHT + 4, `REGION CORNER (${regionStart.join(',')}) IN VOLUME VOXELS, SLICE Z=${regionStart[2] + midZ}`, DIM_TEXT);

  // The region: display column c is region x = rx - 1 - c, display row r is region y = ry - 1 - r.
  const { x: left, y: top } = layout.region;
  canvas.drawGray(left, top, rx, ry, zoom, window, (c, r) => voxel(volume, regionStart[0] + rx - 1 - c, regionStart[1] + ry - 1 - r, regionStart[2] + midZ));
  for (let g = 1; g < grid; g++) {
    canvas.fillRect(left + g * roi * zoom, top, 1, regionPx, GRID_COLOUR);
    canvas.fillRect(left, top + g * roi * zoom, regionPx, 1, GRID_COLOUR);
  }
  cropStarts.forEach(([sx, sy], n) => {
    const colour = CROP_COLOURS[n % CROP_COLOURS.length];
    const x = left + (rx - sx - roi) * zoom;
    const y = top + (ry - sy - roi) * zoom;
    canvas.strokeRect(x, y, thumb, thumb, colour, 2);
    canvas.text(x + 4, y + 4, String(n + 1), colour, 2);
  });
  const note = top + regionPx + 6;
  canvas.text(left, note, 'PATIENT RIGHT ON THE LEFT, ANTERIOR UP. LINES: BASE CROPS.', DIM_TEXT);
  canvas.text(left, note + GLYPH_HEIGHT + 4, 'LABEL = SHARE OF THE CROP AREA ON EACH BASE CROP.', DIM_TEXT);

  cropStarts.forEach((start, n) => {
    const colour = CROP_COLOURS[n % CROP_COLOURS.length];
    const at = layout.crop(n);
    canvas.text(at.viewX, at.viewY - GLYPH_HEIGHT - 4, `CROP ${n + 1} AT X=${start[0]} Y=${start[1]}`, colour);
    drawCrop(canvas, sample.images, n, roi, at.viewX, at.viewY, zoom, window);
    canvas.strokeRect(at.viewX - 2, at.viewY - 2, thumb + 4, thumb + 4, colour, 2);
    canvas.text(at.viewX, at.viewY + thumb + 6, describe(imageAugments[n]), DIM_TEXT);
    drawLabels(canvas, sample.labels.subarray(n * grid * grid, (n + 1) * grid * grid), grid, at.labelsX, at.labelsY, colour);
  });

  const first = layout.base(grid - 1, grid - 1);
  canvas.text(first.x, first.y - GLYPH_HEIGHT - 8, 'BASE CROPS AS THE MODEL SEES THEM (MID-SLICE, AUGMENTED)', TEXT);
  for (let i = 0; i < grid; i++) {
    for (let j = 0; j < grid; j++) {
      const { x, y } = layout.base(i, j);
      drawCrop(canvas, sample.crops, i * grid + j, roi, x, y, 1, window);
      const aug = baseAugments[i * grid + j];
      if (aug.rotations || aug.flip.some((f) => f)) canvas.strokeRect(x - 1, y - 1, roi + 2, roi + 2, GRID_COLOUR, 1);
    }
  }
  const last = layout.base(0, grid - 1);
  canvas.text(last.x + roi + 12, last.y, 'FRAMED: FLIPPED OR ROTATED', DIM_TEXT);
  return canvas.png();
}

/** Samples `volume` with `seed`, draws it and writes the PNG to `file` atomically; returns the sample. */
export function writeVocoPicture(file: string, volume: Volume, seed: number, o: VocoSamplingOptions = DEFAULT_VOCO, picture: PictureOptions = {}): VocoSample {
  const sample = sampleVoco(volume, new Rng(seed), o);
  const png = renderVocoSample(volume, sample, o, picture);
  writeBytesAtomically(file, png);
  return sample;
}

/** The voxel's value, 0 outside the volume (the zero padding around it). */
function voxel(v: Volume, x: number, y: number, z: number): number {
  const [nx, ny, nz] = v.shape;
  return x < 0 || y < 0 || z < 0 || x >= nx || y >= ny || z >= nz ? 0 : v.data[(x * ny + y) * nz + z];
}

/** Mid-slice of crop `n` of a batch array, oriented as the region panel. */
function drawCrop(canvas: Canvas, crops: Float32Array, n: number, roi: number, x: number, y: number, zoom: number, window: readonly [number, number]): void {
  const base = n * roi * roi * roi;
  const mid = Math.floor(roi / 2);
  canvas.drawGray(x, y, roi, roi, zoom, window, (c, r) => crops[base + ((roi - 1 - c) * roi + (roi - 1 - r)) * roi + mid]);
}

/** The labels as a heat grid, base crop (i, j) drawn where it lies in the region panel. */
function drawLabels(canvas: Canvas, labels: Float32Array, grid: number, x: number, y: number, frame: Rgb): void {
  for (let i = 0; i < grid; i++) {
    for (let j = 0; j < grid; j++) {
      const v = labels[i * grid + j];
      const cx = x + (grid - 1 - i) * HEAT_CELL;
      const cy = y + (grid - 1 - j) * HEAT_CELL;
      canvas.fillRect(cx, cy, HEAT_CELL, HEAT_CELL, heatColour(v));
      canvas.strokeRect(cx, cy, HEAT_CELL, HEAT_CELL, [70, 70, 80]);
      const text = v === 0 ? '0' : v.toFixed(2);
      canvas.text(cx + Math.floor((HEAT_CELL - textWidth(text, 1)) / 2), cy + Math.floor((HEAT_CELL - GLYPH_HEIGHT) / 2), text, v > 0.5 ? [0, 0, 0] : TEXT);
    }
  }
  canvas.strokeRect(x - 2, y - 2, grid * HEAT_CELL + 4, grid * HEAT_CELL + 4, frame, 2);
}

function describe(a: CropAugment): string {
  const flips = ['X', 'Y', 'Z'].filter((_, i) => a.flip[i]);
  const parts = [
    flips.length ? `FLIP ${flips.join(',')}` : '',
    a.rotations ? `ROT ${90 * a.rotations}` : '',
    a.shift ? `SHIFT ${a.shift > 0 ? '+' : ''}${a.shift.toFixed(3)}` : '',
  ].filter((p) => p !== '');
  return parts.length ? parts.join(' ') : 'NOT AUGMENTED';
}
