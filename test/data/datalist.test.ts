import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DatalistError, loadDecathlonList, loadPretrainConfig } from '../../data/datalist';
import { loadLabelledList } from '../../data/labelled-datalist';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-datalist-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function write(rel: string, content: string | object): string {
  const file = path.join(tmp, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

for (const rel of ['ct/a.nii.gz', 'ct/b.nii.gz', 'ct/c.nii', 'ct/notes.txt', 'lungs/l1.nii.gz', 'lungs/l2.nii.gz', 'lungs/x1.nii.gz']) write(rel, 'x');

describe('Decathlon datalists', () => {
  test('string and {image} entries resolve against the JSON folder or a base dir', () => {
    const list = write('lists/ds.json', {
      training: [{ image: '../ct/a.nii.gz', label: 'ignored' }, '../ct/b.nii.gz'],
      validation: [{ image: 'c.nii' }],
      test: ['../ct/c.nii'],
    });
    expect(loadDecathlonList(list)).toEqual([path.join(tmp, 'ct/a.nii.gz'), path.join(tmp, 'ct/b.nii.gz')]);
    expect(loadDecathlonList(list, { key: 'validation', baseDir: path.join(tmp, 'ct') })).toEqual([path.join(tmp, 'ct/c.nii')]);
    expect(loadDecathlonList(list, { key: 'test' })).toEqual([path.join(tmp, 'ct/c.nii')]);
  });

  test.each([
    ['a missing listed file', { training: ['../ct/a.nii.gz', '../ct/gone.nii.gz'] }, /listed file .*gone\.nii\.gz does not exist/],
    ['an empty list', { training: [] }, /"training" list is empty/],
    ['a missing key', { validation: [] }, /has no "training" list/],
    ['an entry without image', { training: [{ label: 'x' }] }, /training\[0\] has no image path/],
    ['invalid JSON', '{"training": [', /invalid JSON/],
  ])('%s is a one-line DatalistError naming the list', (name, content, message) => {
    const list = write(`lists/${name.replace(/\W+/g, '-')}.json`, content);
    expect(() => loadDecathlonList(list)).toThrow(DatalistError);
    expect(() => loadDecathlonList(list)).toThrow(message);
    expect(() => loadDecathlonList(list)).toThrow(list);
  });
});

describe('pre-training configs', () => {
  test('datasets from a datalist, a folder and a pattern, with family, repeat and resize', () => {
    write('lists/abd.json', { training: ['../ct/a.nii.gz', '../ct/b.nii.gz'] });
    const config = write('config.json', {
      datasets: [
        { name: 'abd', datalist: 'lists/abd.json', family: 'abdomen', repeat: 2 },
        { name: 'hn', files: 'ct', family: 'headneck', resize: true },
        { name: 'lung', files: 'lungs/l*.nii.gz', family: 'chest' },
      ],
    });
    const entries = loadPretrainConfig(config);
    expect(entries.map((e) => [path.relative(tmp, e.path), e.family, e.dataset, e.options.resize])).toEqual([
      ['ct/a.nii.gz', 'abdomen', 'abd', false],
      ['ct/b.nii.gz', 'abdomen', 'abd', false],
      ['ct/a.nii.gz', 'abdomen', 'abd', false],
      ['ct/b.nii.gz', 'abdomen', 'abd', false],
      ['ct/a.nii.gz', 'headneck', 'hn', true],
      ['ct/b.nii.gz', 'headneck', 'hn', true],
      ['ct/c.nii', 'headneck', 'hn', true],
      ['lungs/l1.nii.gz', 'chest', 'lung', false],
      ['lungs/l2.nii.gz', 'chest', 'lung', false],
    ]);
  });

  test.each([
    ['an unknown family', [{ files: '../ct', family: 'brain' }], /family must be one of abdomen, chest, headneck/],
    ['a bad repeat', [{ files: '../ct', family: 'chest', repeat: 0 }], /repeat must be a positive integer/],
    ['both datalist and files', [{ files: '../ct', datalist: 'x.json', family: 'chest' }], /exactly one of/],
    ['a pattern with no match', [{ files: '../ct/*.mha', family: 'chest' }], /no file matches/],
    ['a missing folder', [{ files: '../nowhere', family: 'chest' }], /folder .*nowhere does not exist/],
    ['no datasets', [], /lists no dataset/],
  ])('%s is a one-line DatalistError', (name, datasets, message) => {
    const config = write(`configs/${name.replace(/\W+/g, '-')}.json`, { datasets });
    expect(() => loadPretrainConfig(config)).toThrow(DatalistError);
    expect(() => loadPretrainConfig(config)).toThrow(message);
  });
});

describe('labelled Decathlon lists', () => {
  test('{image, label} entries of the chosen list, and the class names of the labels table', () => {
    const list = write('lists/seg.json', {
      labels: { '0': 'background', '1': 'liver', '3': 'kidney' },
      training: [{ image: '../ct/a.nii.gz', label: '../seg/a.nii.gz' }],
      validation: [{ image: '../ct/b.nii.gz', label: '../seg/b.nii.gz' }],
    });
    const loaded = loadLabelledList(list, 'validation');
    expect(loaded.entries).toEqual([{ image: path.join(tmp, 'ct/b.nii.gz'), label: path.join(tmp, 'seg/b.nii.gz') }]);
    expect([...(loaded.classNames ?? [])]).toEqual([[0, 'background'], [1, 'liver'], [3, 'kidney']]);
    expect(loadLabelledList(write('lists/nolabels.json', { validation: [{ image: 'a', label: 'b' }], labels: {} }), 'validation').classNames).toBeUndefined();
  });

  test.each([
    [{ validation: ['../ct/a.nii.gz'] }, /validation\[0\] \(\.\.\/ct\/a\.nii\.gz\) has no label path/],
    [{ validation: [{ image: 'a.nii.gz' }] }, /validation\[0\] \(a\.nii\.gz\) has no label path/],
    [{ validation: [] }, /"validation" list is empty/],
    [{ training: [] }, /has no "validation" list/],
    [{ validation: [{ image: 'a', label: 'b' }], labels: { one: 'liver' } }, /"labels" entry "one"/],
  ])('%j is a DatalistError', (content, message) => {
    const file = write('lists/bad.json', content);
    expect(() => loadLabelledList(file, 'validation')).toThrow(DatalistError);
    expect(() => loadLabelledList(file, 'validation')).toThrow(message);
  });
});
