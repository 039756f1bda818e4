import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DatalistError, loadDecathlonList, loadLabelledList, loadPretrainConfig, loadSegmentationDatalist } from '../../data/datalist';
import { writeNifti } from '../../data/nifti/write';
import { LabelGridError } from '../../data/segmentation/label-map';

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

describe('labelled (segmentation) datalists', () => {
  const affine = [-0.8, 0, 0, 16, 0, -0.8, 0, 14, 0, 0, 2.5, -25, 0, 0, 0, 1];
  const nifti = (rel: string, shape: [number, number, number], a = affine): string => {
    const file = path.join(tmp, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeNifti(file, { data: new Float32Array(shape[0] * shape[1] * shape[2]), shape, affine: a }, { datatype: 'int16' });
    return file;
  };
  const [img1, img2] = [nifti('seg/imagesTr/a.nii.gz', [6, 5, 4]), nifti('seg/imagesTr/b.nii', [6, 5, 4])];
  const [lab1, lab2] = [nifti('seg/labelsTr/a.nii.gz', [6, 5, 4]), nifti('seg/labelsTr/b.nii', [6, 5, 4])];
  const shifted = nifti('seg/labelsTr/shifted.nii.gz', [6, 5, 4], affine.map((v, i) => (i === 3 ? v + 0.8 : v)));
  const small = nifti('seg/labelsTr/small.nii.gz', [6, 5, 3]);

  test('training and validation pairs resolve against the JSON folder, with the class names', () => {
    const list = write('seg/datalist.json', {
      labels: { 0: 'background', 1: 'liver' },
      training: [{ image: 'imagesTr/a.nii.gz', label: 'labelsTr/a.nii.gz' }],
      validation: [{ image: 'imagesTr/b.nii', label: 'labelsTr/b.nii' }],
    });
    const read = loadSegmentationDatalist(list);
    expect(read.training).toEqual([{ image: img1, label: lab1 }]);
    expect(read.validation).toEqual([{ image: img2, label: lab2 }]);
    expect(read.missingValidation).toBeUndefined();
    expect([...(read.classNames ?? [])]).toEqual([[0, 'background'], [1, 'liver']]);
    // The image-only readers still take the same file.
    expect(loadDecathlonList(list, { key: 'validation' })).toEqual([img2]);
  });

  test('a Decathlon dataset.json without a validation list says so', () => {
    const list = write('seg/dataset.json', {
      numTraining: 2,
      training: [{ image: './imagesTr/a.nii.gz', label: './labelsTr/a.nii.gz' }, { image: './imagesTr/b.nii', label: './labelsTr/b.nii' }],
      test: ['./imagesTr/b.nii'],
    });
    const read = loadSegmentationDatalist(list);
    expect(read.training).toHaveLength(2);
    expect(read.validation).toBeNull();
    expect(read.missingValidation).toBe(`${list}: has no "validation" list (numTraining 2); it names no validation cases`);
  });

  test.each([
    ['a shifted label', shifted, /affine differs/],
    ['a label of another shape', small, /shape differs/],
  ])('%s is a one-line LabelGridError naming both files', (name, label, what) => {
    const list = write(`seg/${name.replace(/\W+/g, '-')}.json`, { training: [{ image: 'imagesTr/a.nii.gz', label: path.relative(path.join(tmp, 'seg'), label) }] });
    let error: Error | undefined;
    try {
      loadSegmentationDatalist(list);
    } catch (e) {
      error = e as Error;
    }
    expect(error).toBeInstanceOf(LabelGridError);
    expect(error?.message).toMatch(what);
    expect(error?.message).toContain(label);
    expect(error?.message).toContain(img1);
    expect(error?.message).not.toContain('\n');
    expect(loadSegmentationDatalist(list, { checkGrids: false }).training).toHaveLength(1);
  });

  test.each([
    ['an entry without a label', { training: [{ image: 'imagesTr/a.nii.gz' }] }, /training\[0\] \(imagesTr\/a\.nii\.gz\) has no label path/],
    ['a bare path', { training: ['imagesTr/a.nii.gz'] }, /training\[0\] \(imagesTr\/a\.nii\.gz\) has no label path: a labelled list needs/],
    ['a missing label file', { training: [{ image: 'imagesTr/a.nii.gz', label: 'labelsTr/gone.nii.gz' }] }, /listed file .*gone\.nii\.gz does not exist/],
    ['a missing validation label', { training: [{ image: 'imagesTr/a.nii.gz', label: 'labelsTr/a.nii.gz' }], validation: [{ image: 'imagesTr/b.nii' }] }, /validation\[0\] \(imagesTr\/b\.nii\) has no label path/],
    ['an empty training list', { training: [], validation: [] }, /"training" list is empty/],
    ['a bad labels table', { labels: ['background'], training: [{ image: 'imagesTr/a.nii.gz', label: 'labelsTr/a.nii.gz' }] }, /"labels" must map class indices/],
  ])('%s is a one-line DatalistError naming the list', (name, content, message) => {
    const list = write(`seg/${name.replace(/\W+/g, '-')}.json`, content);
    expect(() => loadSegmentationDatalist(list)).toThrow(DatalistError);
    expect(() => loadSegmentationDatalist(list)).toThrow(message);
    expect(() => loadSegmentationDatalist(list)).toThrow(list);
  });
});

describe('labelled Decathlon lists', () => {
  test('{image, label} entries of the chosen list, and the class names of the labels table', () => {
    const list = write('lists/seg.json', {
      labels: { '0': 'background', '1': 'liver', '3': 'kidney' },
      training: [{ image: '../ct/a.nii.gz', label: '../seg/a.nii.gz' }],
      validation: [{ image: '../ct/b.nii.gz', label: '../seg/b.nii.gz' }],
    });
    const loaded = loadLabelledList(list, 'validation', { checkExists: false });
    expect(loaded.entries).toEqual([{ image: path.join(tmp, 'ct/b.nii.gz'), label: path.join(tmp, 'seg/b.nii.gz') }]);
    expect([...(loaded.classNames ?? [])]).toEqual([[0, 'background'], [1, 'liver'], [3, 'kidney']]);
    expect(loadLabelledList(write('lists/nolabels.json', { validation: [{ image: 'a', label: 'b' }], labels: {} }), 'validation', { checkExists: false }).classNames).toBeUndefined();
  });

  test.each([
    [{ validation: ['../ct/a.nii.gz'] }, /validation\[0\] \(\.\.\/ct\/a\.nii\.gz\) has no label path/],
    [{ validation: [{ image: 'a.nii.gz' }] }, /validation\[0\] \(a\.nii\.gz\) has no label path/],
    [{ validation: [] }, /"validation" list is empty/],
    [{ training: [] }, /has no "validation" list/],
    [{ validation: [{ image: 'a', label: 'b' }], labels: { one: 'liver' } }, /"labels" must map class indices to names.*entry "one"/],
  ])('%j is a DatalistError', (content, message) => {
    const file = write('lists/bad.json', content);
    expect(() => loadLabelledList(file, 'validation', { checkExists: false })).toThrow(DatalistError);
    expect(() => loadLabelledList(file, 'validation', { checkExists: false })).toThrow(message);
  });
});
