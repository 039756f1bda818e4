import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PNG } from 'pngjs';
import { loadDecathlonList } from '../../data/datalist';
import { pictureLayout } from '../../data/render/voco-crops';
import { DEFAULT_VOCO } from '../../data/voco/options';

const ROOT = path.resolve(__dirname, '../..');

function voco(...args: string[]) {
  return spawnSync(process.execPath, ['--require', require.resolve('tsx/cjs'), 'cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
}

describe('voco phantom and voco preprocess --png', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-phantom-cli-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes the built-in data set, then a picture of a VoCo sample of one of its volumes', () => {
    const labelsPng = path.join(dir, 'labels.png');
    const made = voco('phantom', path.join(dir, 'set'), '--count', '2', '--seed', '3', '--png', labelsPng);
    expect(made.stderr).toBe('');
    expect(made.status).toBe(0);
    expect(made.stdout).toContain('9 organ labels (liver, spleen, right kidney, left kidney, aorta');
    const files = loadDecathlonList(path.join(dir, 'set', 'dataset.json'));
    expect(files).toHaveLength(2);
    // The labels picture: the liver's colour blended over the grey image on part of the axial slice.
    const labels = PNG.sync.read(fs.readFileSync(labelsPng));
    let liverish = 0;
    for (let p = 0; p < labels.data.length; p += 4) if (labels.data[p] > labels.data[p + 1] + 40 && labels.data[p] > labels.data[p + 2] + 40) liverish++;
    expect(liverish).toBeGreaterThan(2000);
    const png = path.join(dir, 'sample.png');
    const run = voco('preprocess', files[0], '--family', 'abdomen', '--out', path.join(dir, 'pre.nii.gz'), '--png', png);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`wrote ${png}`);
    const picture = PNG.sync.read(fs.readFileSync(png));
    const layout = pictureLayout(DEFAULT_VOCO);
    expect([picture.width, picture.height]).toEqual([layout.width, layout.height]);
  });

  it('reports bad arguments in one line, before writing anything', () => {
    const noPngFolder = voco('phantom', path.join(dir, 'none'), '--png', path.join(dir, 'no', 'p.png'));
    expect(noPngFolder.stderr.trim()).toBe(`voco: output folder ${path.join(dir, 'no')} does not exist`);
    const bad = voco('phantom', path.join(dir, 'none'), '--count', '0');
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim()).toBe('voco: phantom count must be a whole number >= 1, got 0');
    expect(fs.existsSync(path.join(dir, 'none'))).toBe(false);
    const out = path.join(dir, 'never.nii.gz');
    const noFolder = voco('preprocess', 'missing.nii.gz', '--family', 'chest', '--out', out, '--png', path.join(dir, 'no', 'p.png'));
    expect(noFolder.status).toBe(2);
    expect(noFolder.stderr.trim()).toBe(`voco: output folder ${path.join(dir, 'no')} does not exist`);
    expect(fs.existsSync(out)).toBe(false);
  });
});
