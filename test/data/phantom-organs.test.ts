import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadVolume } from '../../data/nifti/read';
import { writePhantomDataset } from '../../data/phantom/dataset';
import { organLabel } from '../../data/phantom/organs';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-phantom-organs-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test('a phantom dataset of an organ subset marks those organs, renumbered in the order given, the rest background', () => {
  const options = { count: 1, seed: 2, phantom: { geometry: { inPlaneSize: [40, 48] as const, slices: [16, 20] as const } } };
  const all = writePhantomDataset(path.join(work, 'all'), options);
  const some = writePhantomDataset(path.join(work, 'some'), { ...options, organs: ['spleen', 'liver'] });
  const json = JSON.parse(fs.readFileSync(some, 'utf8'));
  expect(json.labels).toEqual({ '0': 'background', '1': 'spleen', '2': 'liver' });
  const label = (file: string) => loadVolume(path.join(path.dirname(file), JSON.parse(fs.readFileSync(file, 'utf8')).training[0].label)).volume.data;
  const [full, subset] = [label(all), label(some)];
  const expected = full.map((v) => (v === organLabel('spleen') ? 1 : v === organLabel('liver') ? 2 : 0));
  expect(expected.some((v) => v === 1) && expected.some((v) => v === 2)).toBe(true);
  expect(Buffer.from(subset.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
});
