/** What `voco segment` reads before any model runs: the scans named (files, folders, datalists) and the --model kind. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DatalistError } from '../../data/datalist';
import { SegmentInputError, resolveSegmentInputs } from '../../runtime/segment/segment-files';
import { SegmenterModelError, openSegmenter } from '../../runtime/segment/segmenter-source';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'segment-inputs-'));
  for (const f of ['a/x.nii.gz', 'a/y.nii', 'a/notes.txt', 'b/x.nii']) {
    fs.mkdirSync(path.dirname(path.join(tmp, f)), { recursive: true });
    fs.writeFileSync(path.join(tmp, f), '');
  }
  fs.writeFileSync(path.join(tmp, 'list.json'), JSON.stringify({ training: [{ image: 'a/x.nii.gz', label: 'a/y.nii' }], test: ['a/y.nii'] }));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('files, folders (their NIfTI files) and datalists (the chosen list), each scan once', () => {
  const at = (f: string) => path.join(tmp, f);
  expect(resolveSegmentInputs([at('a')], 'validation')).toEqual([at('a/x.nii.gz'), at('a/y.nii')]);
  expect(resolveSegmentInputs([at('list.json')], 'test')).toEqual([at('a/y.nii')]);
  expect(resolveSegmentInputs([at('a/y.nii'), at('a'), at('list.json')], 'training')).toEqual([at('a/y.nii'), at('a/x.nii.gz')]);
});

test.each([
  ['two scans of the same name', ['a', 'b/x.nii'], SegmentInputError, /x\.nii\.gz and .*b\/x\.nii would both write x_seg\.nii\.gz/],
  ['a missing path', ['c.nii.gz'], SegmentInputError, /c\.nii\.gz: no such file or folder/],
  ['a datalist without the list', ['list.json'], DatalistError, /has no "validation" list/],
])('%s is a one-line error', (_, inputs, kind, message) => {
  const run = () => resolveSegmentInputs(inputs.map((f) => path.join(tmp, f)), 'validation');
  expect(run).toThrow(kind);
  expect(run).toThrow(message);
});

test.each([
  ['a missing model', 'none.ckpt', /--model .*none\.ckpt: no such file/],
  ['a model of an unknown kind', 'a/notes.txt', /expected a segmenter \.onnx, a fine-tuning checkpoint/],
])('%s is a SegmenterModelError', async (_, file, message) => {
  const open = openSegmenter(path.join(tmp, file), {});
  await expect(open).rejects.toThrow(SegmenterModelError);
  await expect(openSegmenter(path.join(tmp, file), {})).rejects.toThrow(message);
});
