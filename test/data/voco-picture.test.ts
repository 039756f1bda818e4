import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PNG } from 'pngjs';
import { Rng } from '../../common/rng';
import { heatColour, pictureLayout, renderVocoSample, writeVocoPicture } from '../../data/render/voco-crops';
import type { Volume } from '../../data/volume';
import { DEFAULT_VOCO } from '../../data/voco/options';
import { sampleVoco } from '../../data/voco/sample';

/** A 150 x 170 x 70 volume with a smooth pattern in [0, 1] that differs along x, y and z. */
function patternVolume(): Volume {
  const shape: [number, number, number] = [150, 170, 70];
  const data = new Float32Array(shape[0] * shape[1] * shape[2]);
  let at = 0;
  for (let x = 0; x < shape[0]; x++)
    for (let y = 0; y < shape[1]; y++) for (let z = 0; z < shape[2]; z++) data[at++] = 0.5 + 0.3 * Math.sin(x / 9) * Math.cos(y / 13) + 0.002 * z;
  return { data, shape, affine: [1.5, 0, 0, 0, 0, 1.5, 0, 0, 0, 0, 1.5, 0, 0, 0, 0, 1] };
}

function rgbAt(png: PNG, x: number, y: number): number[] {
  const at = (y * png.width + x) * 4;
  return [png.data[at], png.data[at + 1], png.data[at + 2]];
}

describe('VoCo sample picture', () => {
  const volume = patternVolume();
  const sample = sampleVoco(volume, new Rng(17));
  const png = PNG.sync.read(renderVocoSample(volume, sample));
  const layout = pictureLayout(DEFAULT_VOCO);
  const { zoom } = layout;

  it('shows the region mid-slice with the patient right on the left and anterior up', () => {
    expect([png.width, png.height]).toEqual([layout.width, layout.height]);
    const [sx, sy, sz] = sample.layout.regionStart;
    const [nx, ny, nz] = volume.shape;
    let checked = 0;
    let matching = 0;
    for (let c = 3; c < 192; c += 7)
      for (let r = 5; r < 192; r += 11) {
        const x = sx + 191 - c;
        const y = sy + 191 - r;
        const v = x >= 0 && y >= 0 && x < nx && y < ny ? volume.data[(x * ny + y) * nz + sz + 32] : 0;
        const grey = Math.round(255 * v);
        const [red, green, blue] = rgbAt(png, layout.region.x + c * zoom + 1, layout.region.y + r * zoom + 1);
        if (red !== green || green !== blue) continue; // under a grid line, crop outline or number
        checked++;
        if (red === grey) matching++;
      }
    expect(checked).toBeGreaterThan(400);
    expect(matching).toBe(checked);
  });

  it('outlines each random crop where it lies and draws its labels as a heat grid', () => {
    sample.layout.cropStarts.forEach(([cx, cy], n) => {
      // Bottom-right corner of the outline: region x = cx, y = cy are the right and bottom edges on screen.
      const right = layout.region.x + (192 - cx) * zoom - 1;
      const bottom = layout.region.y + (192 - cy) * zoom - 1;
      const outline = rgbAt(png, right, bottom);
      expect(outline[0] !== outline[1] || outline[1] !== outline[2]).toBe(true);
      expect(rgbAt(png, layout.crop(n).viewX - 1, layout.crop(n).viewY + 10)).toEqual(outline);
      const at = layout.crop(n);
      for (let i = 0; i < 3; i++)
        for (let j = 0; j < 3; j++) {
          const v = sample.labels[n * 9 + i * 3 + j];
          const px = at.labelsX + (2 - i) * layout.labelCell + 2;
          const py = at.labelsY + (2 - j) * layout.labelCell + 2;
          expect(rgbAt(png, px, py)).toEqual([...heatColour(v)]);
        }
    });
  });

  it('shows each random crop view as the model input it is', () => {
    const at = layout.crop(0);
    for (const [c, r] of [[5, 7], [40, 20], [60, 61]]) {
      const v = sample.images[((63 - c) * 64 + (63 - r)) * 64 + 32];
      const grey = Math.max(0, Math.min(255, Math.round(255 * v)));
      expect(rgbAt(png, at.viewX + c * zoom, at.viewY + r * zoom)).toEqual([grey, grey, grey]);
    }
    const base = layout.base(1, 1);
    const v = sample.crops[(4 * 64 * 64 + (63 - 10) * 64 + (63 - 20)) * 64 + 32];
    const grey = Math.max(0, Math.min(255, Math.round(255 * v)));
    expect(rgbAt(png, base.x + 10, base.y + 20)).toEqual([grey, grey, grey]);
  });

  it('writes the file atomically and returns the sample it drew', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-png-'));
    try {
      const file = path.join(dir, 'sample.png');
      const drawn = writeVocoPicture(file, volume, 17);
      expect(drawn.layout).toEqual(sample.layout);
      expect(fs.readFileSync(file).equals(renderVocoSample(volume, sample))).toBe(true);
      expect(fs.readdirSync(dir)).toEqual(['sample.png']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
