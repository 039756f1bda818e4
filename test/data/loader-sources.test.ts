import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preprocessSpec } from '../../data/cache/pipeline-task';
import { loaderSources, readDataEntries } from '../../data/loader/sources';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'voco-sources-'));
  for (const name of ['a.nii.gz', 'b.nii.gz', 'c.nii']) writeFileSync(join(dir, name), 'placeholder');
  writeFileSync(join(dir, 'list.json'), JSON.stringify({ training: ['a.nii.gz', { image: 'b.nii.gz' }] }));
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      datasets: [
        { name: 'abd', datalist: 'list.json', family: 'abdomen', repeat: 3 },
        { name: 'chest', files: '*.nii', family: 'chest' },
        { name: 'hn', files: 'a.nii.g?', family: 'headneck', resize: true },
      ],
    }),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('reads a Decathlon list with the given family, and a pre-training config with its own families', () => {
  const list = readDataEntries(join(dir, 'list.json'), 'chest', { resize: true });
  expect(list.map((e) => [e.path, e.family, e.options.resize])).toEqual([
    [join(dir, 'a.nii.gz'), 'chest', true],
    [join(dir, 'b.nii.gz'), 'chest', true],
  ]);
  expect(readDataEntries(join(dir, 'config.json'), 'chest')).toHaveLength(3 * 2 + 1 + 1);
});

it('folds repeated entries into one source with a repeat factor, keeping different preprocessing apart', () => {
  const sources = loaderSources(readDataEntries(join(dir, 'config.json'), 'chest'));
  expect(sources.map((s) => [s.path, s.preprocessing.family, s.repeat])).toEqual([
    [join(dir, 'a.nii.gz'), 'abdomen', 3],
    [join(dir, 'b.nii.gz'), 'abdomen', 3],
    [join(dir, 'c.nii'), 'chest', 1],
    [join(dir, 'a.nii.gz'), 'headneck', 1],
  ]);
  expect(sources[3].preprocessing).toEqual(preprocessSpec('headneck', { resize: true }));
  expect(sources[3].preprocessing.resizeTo).toEqual([192, 192, 64]);
  expect(sources[0].preprocessing.params.window).toEqual({ aMin: -175, aMax: 250, bMin: 0, bMax: 1 });
});
