/**
 * `voco segment` and `voco export` of a fine-tuned SwinUNETR, with the tiny model of
 * ../shared/reference/segmentation/tiny12_r64_b2_c4 at roi 64 on the scans of the reference labels cases
 * (LPS int16 .nii.gz and PSR scaled int16 .nii): label maps on each scan's grid (shape, affine and header geometry
 * equal to the scan's), equal bit for bit to the steps done by hand (preprocess, the same sliding window, argmax,
 * invertLabels); the checkpoint, its exported segmenter.onnx and the MONAI state dict give the same labels; a
 * corrupt scan in a folder is reported and skipped with nothing half-written; the picture decodes. The export runs
 * in a plain onnxruntime-node session and equals MONAI's logits; its state dicts are the files of the writer whose
 * .pt the weights tests load into MONAI's SwinUNETR (one such test).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { PNG } from 'pngjs';
import { loadVolume } from '../../data/nifti/read';
import { preprocessImageForInference } from '../../data/segmentation/preprocess';
import { invertLabels } from '../../data/transforms/invert';
import type { ConstantData } from '../../graph/core/graph';
import { buildSegmenterGraph } from '../../graph/models/swinunetr/model';
import { resolveSwinUnetrOptions } from '../../graph/models/swinunetr/options';
import { readSegmenterFacts } from '../../graph/models/swinunetr/segmenter-file';
import { writeSwinUnetrWeights } from '../../graph/models/swinunetr/weights';
import { writeForwardModel } from '../../graph/onnx/artifacts';
import { readSafetensors } from '../../io/weights/safetensors';
import { sessionPredictor } from '../../runtime/segment/session-predictor';
import { argmaxChannels, slidingWindowInference } from '../../runtime/segment/sliding-window';
import { createSession } from '../../runtime/session/providers';
import { REFERENCE, referenceDescribe } from '../helpers/reference';

const ROOT = path.resolve(__dirname, '../..');
const SEG = path.join(REFERENCE, 'segmentation');
const WEIGHTS = path.join(SEG, 'tiny12_r64_b2_c4/weights.safetensors');
const SCANS = ['labels/v01_lps_int16_uint8_gz/ct_lps_int16.nii.gz', 'labels/v02_psr_int16slope_int16_nii/ct_psr_int16_slope.nii'].map((f) => path.join(SEG, f));
const CLASS_NAMES = { '0': 'background', '1': 'liver', '2': 'spleen', '3': 'kidney' };

function voco(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const outputName = (scan: string) => `${path.basename(scan).replace(/\.nii(\.gz)?$/, '')}_seg.nii.gz`;

referenceDescribe('voco segment and voco export of a fine-tuned SwinUNETR', () => {
  let tmp: string;
  let ckpt: string;
  let byHand: Uint8Array[];

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'segment-cli-'));
    const state = readSafetensors(WEIGHTS);
    const values = new Map([...state].filter(([, t]) => t.data instanceof Float32Array).map(([k, t]) => [k, t.data as Float32Array]));
    // A fine-tuning checkpoint as the training loop leaves it: parameters under MONAI names, the run's roi and datalist.
    const datalist = path.join(tmp, 'dataset.json');
    fs.writeFileSync(datalist, JSON.stringify({ labels: CLASS_NAMES, training: [] }));
    ckpt = path.join(tmp, 'finetuned.ckpt');
    writeSwinUnetrWeights(ckpt, { featureSize: 12, inChannels: 1, outChannels: 4 }, values, { config: { roi: 64, data: datalist } });

    // By hand: the same chain from the library pieces, the model built here from the fixture's state dict.
    const net = buildSegmenterGraph(resolveSwinUnetrOptions({ featureSize: 12, inChannels: 1, outChannels: 4, roi: 64, batchSize: 2 }), 2);
    const model = path.join(tmp, 'by-hand.onnx');
    writeForwardModel(model, { inputs: [net.image], outputs: { logits: net.logits }, weights: new Map([...values].map(([k, v]) => [k, v as ConstantData])) });
    const session = await createSession(model);
    const { predict } = sessionPredictor(session, { roi: [64, 64, 64], inChannels: 1 });
    byHand = [];
    for (const scan of SCANS) {
      const { volume, record } = preprocessImageForInference(scan, 'abdomen');
      const logits = await slidingWindowInference({ data: volume.data, channels: 1, shape: volume.shape }, predict, { roi: 64, overlap: 0.75, swBatchSize: 2, mode: 'constant' });
      byHand.push(Uint8Array.from(invertLabels({ data: Float32Array.from(argmaxChannels(logits)), shape: volume.shape }, record).data));
    }
    await session.release();
  }, 600_000);
  afterAll(() => tmp && fs.rmSync(tmp, { recursive: true, force: true }));

  const labelsOf = (file: string) => Uint8Array.from(loadVolume(file).volume.data);

  test('from the checkpoint: label maps on each scan grid, equal to the steps by hand, with pictures', () => {
    const out = path.join(tmp, 'from-ckpt');
    const run = voco('segment', ...SCANS, '--model', ckpt, '--out', out, '--png');
    expect(run.stderr).toContain('roi 64');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('segmented 2 of 2 scan(s)');
    SCANS.forEach((scan, i) => {
      const file = path.join(out, outputName(scan));
      const written = loadVolume(file);
      const input = loadVolume(scan);
      expect(written.volume.shape).toEqual(input.volume.shape);
      expect(written.volume.affine).toEqual(input.volume.affine);
      const geometry = (h: typeof input.header) => [h.pixdim.slice(0, 4), h.qformCode, h.sformCode, h.quatern, h.qoffset, h.srow, h.xyztUnits];
      expect(geometry(written.header)).toEqual(geometry(input.header));
      expect(written.header.datatypeName).toBe('uint8');
      const labels = labelsOf(file);
      expect(labels).toEqual(byHand[i]);
      expect(new Set(labels).size).toBeGreaterThan(1);

      const picture = PNG.sync.read(fs.readFileSync(path.join(out, outputName(scan).replace('.nii.gz', '.png'))));
      expect(picture.width).toBeGreaterThan(200);
      // Every class present in the preprocessed labels appears in its palette colour (the legend at least).
      const pixels = new Set<string>();
      for (let p = 0; p < picture.data.length; p += 4) pixels.add(`${picture.data[p]},${picture.data[p + 1]},${picture.data[p + 2]}`);
      expect(pixels.has('230,90,60') || pixels.has('70,160,240')).toBe(true);
    });
    expect(fs.readdirSync(out).filter((f) => f.startsWith('.'))).toEqual([]);
  }, 600_000);

  test('export: segmenter.onnx runs in a plain session, equals MONAI, and segments as the checkpoint and the state dict do', async () => {
    const dir = path.join(tmp, 'export');
    const run = voco('export', ckpt, '--out', dir);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    for (const f of ['segmenter.onnx', 'swinunetr_weights.safetensors', 'swinunetr_weights.pt']) expect(run.stdout).toContain(`wrote ${path.join(dir, f)}`);
    const onnxFile = path.join(dir, 'segmenter.onnx');
    const facts = readSegmenterFacts(onnxFile);
    // The run config names no spacing: the abdomen chain's own 1.5 mm.
    expect(facts).toEqual({
      roi: 64,
      classNames: new Map(Object.entries(CLASS_NAMES).map(([k, v]) => [Number(k), v])),
      preprocessing: { family: 'abdomen', spacing: [1.5, 1.5, 1.5] },
    });

    // A plain session, no project code: item 0 of the fixture's batch against MONAI's logits head.
    const session = await ort.InferenceSession.create(onnxFile);
    expect(session.inputNames).toEqual(['image']);
    const image = readSafetensors(path.join(SEG, 'tiny12_r64_b2_c4/inputs.safetensors')).get('image')!.data as Float32Array;
    const result = await session.run({ image: new ort.Tensor('float32', image.subarray(0, 64 ** 3), [1, 1, 64, 64, 64]) });
    const logits = result.logits.data as Float32Array;
    expect(result.logits.dims).toEqual([1, 4, 64, 64, 64]);
    const head = readSafetensors(path.join(SEG, 'tiny12_r64_b2_c4/expected.safetensors')).get('logits.head')!.data as Float32Array;
    let [diff, scale] = [0, 0];
    head.forEach((v, i) => ([diff, scale] = [Math.max(diff, Math.abs(logits[i] - v)), Math.max(scale, Math.abs(v))]));
    expect(diff / scale).toBeLessThan(1e-4);
    await session.release();

    // The same labels from the exported ONNX (3 windows a run, its batch symbolic) and the state dicts.
    for (const model of [onnxFile, path.join(dir, 'swinunetr_weights.safetensors'), path.join(dir, 'swinunetr_weights.pt')]) {
      const out = path.join(tmp, `from-${path.basename(model).replace(/\W/g, '-')}`);
      const seg = voco('segment', ...SCANS, '--model', model, '--out', out, '--roi', '64', '--sw-batch-size', '3');
      expect(seg.status).toBe(0);
      SCANS.forEach((scan, i) => expect(labelsOf(path.join(out, outputName(scan)))).toEqual(byHand[i]));
    }
  }, 600_000);

  test('a folder with a corrupt scan: the others are written, the bad one reported, nothing half-written', () => {
    const folder = path.join(tmp, 'scans');
    fs.mkdirSync(folder);
    for (const scan of SCANS) fs.copyFileSync(scan, path.join(folder, path.basename(scan)));
    const bad = path.join(folder, 'broken.nii.gz');
    fs.writeFileSync(bad, fs.readFileSync(SCANS[0]).subarray(0, 2000)); // a truncated gzip stream
    const out = path.join(tmp, 'from-folder');
    const run = voco('segment', folder, '--model', WEIGHTS, '--roi', '64', '--out', out);
    expect(run.status).toBe(2);
    const failures = run.stderr.split('\n').filter((l) => /^\[\d+\/\d+\] failed: /.test(l));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toContain(bad);
    expect(run.stderr).toMatch(/voco: segmented 2 of 3 scan\(s\); 1 failed: .*broken\.nii\.gz/);
    expect(fs.readdirSync(out).sort()).toEqual(SCANS.map(outputName).sort());
    SCANS.forEach((scan, i) => expect(labelsOf(path.join(out, outputName(scan)))).toEqual(byHand[i]));
  }, 600_000);

  test('the exported state dicts are what writeSwinUnetrWeights writes (whose .pt MONAI loads: test/models/swinunetr-weights.test.ts)', () => {
    const values = new Map([...readSafetensors(WEIGHTS)].filter(([, t]) => t.data instanceof Float32Array).map(([k, t]) => [k, t.data as Float32Array]));
    for (const ext of ['pt', 'safetensors']) {
      const direct = path.join(tmp, `direct.${ext}`);
      writeSwinUnetrWeights(direct, { featureSize: 12, inChannels: 1, outChannels: 4 }, values);
      expect(fs.readFileSync(path.join(tmp, 'export', `swinunetr_weights.${ext}`)).equals(fs.readFileSync(direct))).toBe(true);
    }
  });
});
