import { PNG } from 'pngjs';
import { GLYPH_WIDTH, glyph } from './font';

export type Rgb = readonly [number, number, number];

/** An RGB picture with the few drawing operations our figures need; `png()` encodes it. */
export class Canvas {
  readonly pixels: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb = [0, 0, 0],
  ) {
    this.pixels = new Uint8Array(width * height * 3);
    this.fillRect(0, 0, width, height, background);
  }

  setPixel(x: number, y: number, c: Rgb): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const at = (y * this.width + x) * 3;
    this.pixels[at] = c[0];
    this.pixels[at + 1] = c[1];
    this.pixels[at + 2] = c[2];
  }

  fillRect(x: number, y: number, w: number, h: number, c: Rgb): void {
    for (let r = y; r < y + h; r++) for (let q = x; q < x + w; q++) this.setPixel(q, r, c);
  }

  /** The outline of a rectangle, `thickness` pixels wide, drawn inside it. */
  strokeRect(x: number, y: number, w: number, h: number, c: Rgb, thickness = 1): void {
    this.fillRect(x, y, w, thickness, c);
    this.fillRect(x, y + h - thickness, w, thickness, c);
    this.fillRect(x, y, thickness, h, c);
    this.fillRect(x + w - thickness, y, thickness, h, c);
  }

  /**
   * Draws a `cols` x `rows` grey image given by `value(col, row)`, `window` mapped to black..white, each
   * pixel enlarged to `scale` x `scale`, its top-left corner at (x, y).
   */
  drawGray(x: number, y: number, cols: number, rows: number, scale: number, window: readonly [number, number], value: (col: number, row: number) => number): void {
    const span = window[1] - window[0] || 1;
    for (let r = 0; r < rows; r++) {
      for (let q = 0; q < cols; q++) {
        const g = Math.round((255 * (value(q, r) - window[0])) / span);
        const v = g < 0 ? 0 : g > 255 ? 255 : g;
        this.fillRect(x + q * scale, y + r * scale, scale, scale, [v, v, v]);
      }
    }
  }

  /** Writes `text` with its top-left corner at (x, y) in the 5x7 font enlarged `scale` times. */
  text(x: number, y: number, text: string, c: Rgb, scale = 1): void {
    let left = x;
    for (const ch of text) {
      glyph(ch).forEach((row, r) => row.forEach((on, q) => on && this.fillRect(left + q * scale, y + r * scale, scale, scale, c)));
      left += (GLYPH_WIDTH + 1) * scale;
    }
  }

  png(): Buffer {
    // One fixed row filter ('up'): pngjs's adaptive choice costs much more time for little gain on these pictures.
    const options = { colorType: 2, inputColorType: 2, inputHasAlpha: false, filterType: 2 } as const;
    const png = new PNG({ width: this.width, height: this.height, ...options });
    png.data = Buffer.from(this.pixels.buffer, this.pixels.byteOffset, this.pixels.byteLength);
    return PNG.sync.write(png, options);
  }
}
