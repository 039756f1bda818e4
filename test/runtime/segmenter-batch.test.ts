/**
 * The segmenter's symbolic batch end to end, with a fresh tiny SwinUNETR (feature size 12, 3 classes) at roi 32:
 * `voco export` of its fine-tuning checkpoint writes a segmenter.onnx whose image and logits lead with `batch`; a
 * plain onnxruntime-node session runs it on 1, 2 and 3 different random windows, each window's logits within 1e-5
 * of the fixed one-window segmenter (as exports were written before); `voco segment` runs it with the windows of
 * any --sw-batch-size per run, giving the labels of sw batch 1 and of an older fixed-batch file (batch 2, padded).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { Rng } from '../../common/rng';
import { loadVolume } from '../../data/nifti/read';
import { writeNifti } from '../../data/nifti/write';
import type { ConstantData } from '../../graph/core/graph';
import { LOGITS_OUTPUT } from '../../graph/models/swinunetr/artifacts';
import { buildSegmenterGraph } from '../../graph/models/swinunetr/model';
import { SEGMENTER_METADATA, SEGMENTER_MODEL_KIND, readSegmenterFacts } from '../../graph/models/swinunetr/segmenter-file';
import { writeSwinUnetrWeights } from '../../graph/models/swinunetr/weights';
import { freshVocoValues } from '../../graph/models/voco/weights';
import { writeForwardModel } from '../../graph/onnx/artifacts';
import { readModelMetadata } from '../../graph/onnx/metadata';
import { choosePreprocessing } from '../../runtime/segment/preprocessing';
import { segmentFiles } from '../../runtime/segment/segment-files';
import { OpenSegmenter, openSegmenter } from '../../runtime/segment/segmenter-source';
import { runVoco } from '../helpers/cli';

const MODEL = { featureSize: 12, inChannels: 1, outChannels: 3, roi: 32 };
const WINDOW = 32 ** 3;

describe('segmenter.onnx with a symbolic batch', () => {
  let tmp: string;
  let ckpt: string;
  let values: Map<string, Float32Array>;
  let scan: string;

  /** A segmenter file as `voco export` wrote them before the batch was symbolic: `batch` windows, fixed. */
  function fixedBatchFile(batch: number): string {
    const seg = buildSegmenterGraph({ ...MODEL, batchSize: batch }, batch);
    const file = path.join(tmp, `fixed-${batch}.onnx`);
    writeForwardModel(file, {
      inputs: [seg.image],
      outputs: { [LOGITS_OUTPUT]: seg.logits },
      weights: new Map([...values].map(([k, v]) => [k, v as ConstantData])),
      metadata: { [SEGMENTER_METADATA.model]: SEGMENTER_MODEL_KIND, [SEGMENTER_METADATA.batch]: String(batch), [SEGMENTER_METADATA.roi]: '32' },
    });
    return file;
  }

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'segmenter-batch-'));
    values = freshVocoValues(buildSegmenterGraph({ ...MODEL, batchSize: 1 }, 1), 5);
    ckpt = path.join(tmp, 'finetuned.ckpt');
    writeSwinUnetrWeights(ckpt, MODEL, values, { config: { roi: 32 } });
    // A CT-like scan on a 1.5 mm RAS grid, all inside the HU window: preprocessed, 40 x 38 x 36, 8 windows at overlap 0.5.
    const shape: [number, number, number] = [40, 38, 36];
    const data = new Float32Array(shape[0] * shape[1] * shape[2]);
    let i = 0;
    for (let x = 0; x < shape[0]; x++) for (let y = 0; y < shape[1]; y++) for (let z = 0; z < shape[2]; z++) data[i++] = 40 + 150 * Math.sin(x / 4) * Math.cos(y / 6) + 40 * Math.sin(z / 3);
    scan = path.join(tmp, 'ct.nii.gz');
    writeNifti(scan, { data, shape, affine: [1.5, 0, 0, 0, 0, 1.5, 0, 0, 0, 0, 1.5, 0, 0, 0, 0, 1] }, { datatype: 'int16' });
  }, 120_000);
  afterAll(() => tmp && fs.rmSync(tmp, { recursive: true, force: true }));

  test('voco export: image and logits lead with `batch`; 1, 2 and 3 windows each as the fixed one-window model gives them', async () => {
    const dir = path.join(tmp, 'export');
    const run = runVoco(['export', ckpt, '--out', dir, '--formats', 'onnx']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('segmenter roi 32, any number of windows per run');
    const file = path.join(dir, 'segmenter.onnx');
    expect(run.stdout).toContain(`wrote ${file}`);
    // The checkpoint's run config names no datalist and no spacing: the built-in phantoms' organs, the abdomen chain.
    expect(readSegmenterFacts(file)).toEqual({
      roi: 32,
      classNames: new Map([[0, 'background'], [1, 'liver'], [2, 'spleen']]),
      preprocessing: { family: 'abdomen', spacing: [1.5, 1.5, 1.5] },
    });
    expect(readModelMetadata(file)[SEGMENTER_METADATA.batch]).toBe('dynamic');
    expect(onnx.ModelProto.decode(fs.readFileSync(file)).opsetImport.map((o) => Number(o.version))).toEqual([23]);

    const session = await ort.InferenceSession.create(file);
    const fixed = await ort.InferenceSession.create(fixedBatchFile(1));
    const shapes = (m: readonly ort.InferenceSession.ValueMetadata[]) => m.map((v) => (v.isTensor ? v.shape : []));
    expect(shapes(session.inputMetadata)).toEqual([['batch', 1, 32, 32, 32]]);
    expect(shapes(session.outputMetadata)).toEqual([['batch', 3, 32, 32, 32]]);

    const rng = new Rng(11);
    const windows = Float32Array.from({ length: 6 * WINDOW }, () => rng.normal());
    let first = 0;
    for (const count of [1, 2, 3]) {
      const batch = windows.subarray(first * WINDOW, (first + count) * WINDOW);
      const out = (await session.run({ image: new ort.Tensor('float32', batch, [count, 1, 32, 32, 32]) }))[LOGITS_OUTPUT];
      expect(out.dims).toEqual([count, 3, 32, 32, 32]);
      const logits = out.data as Float32Array;
      for (let w = 0; w < count; w++) {
        const alone = (await fixed.run({ image: new ort.Tensor('float32', batch.slice(w * WINDOW, (w + 1) * WINDOW), [1, 1, 32, 32, 32]) }))[LOGITS_OUTPUT].data as Float32Array;
        const part = logits.subarray(w * alone.length, (w + 1) * alone.length);
        let [diff, scale] = [0, 0];
        alone.forEach((v, i) => ([diff, scale] = [Math.max(diff, Math.abs(part[i] - v)), Math.max(scale, Math.abs(v))]));
        expect(scale).toBeGreaterThan(0.1);
        expect(diff).toBeLessThan(1e-5);
      }
      first += count;
    }
    await Promise.all([session.release(), fixed.release()]);
  }, 300_000);

  test('voco segment: any --sw-batch-size per run on the symbolic file, the labels of sw batch 1 and of a fixed-batch file', async () => {
    const file = path.join(tmp, 'export', 'segmenter.onnx');
    /** The label map segmentFiles writes with `model` at `swBatchSize`, and the window counts its predictor got. */
    const segment = async (model: OpenSegmenter, swBatchSize: number, out: string) => {
      const calls: number[] = [];
      const counted: OpenSegmenter = { ...model, predictor: { ...model.predictor, predict: (w, n) => (calls.push(n), model.predictor.predict(w, n)) } };
      const stream = new PassThrough() as unknown as NodeJS.WriteStream; // the progress lines
      const options = { outDir: path.join(tmp, out), preprocessing: choosePreprocessing(model.preprocessing, {}), overlap: 0.5, mode: 'constant' as const, swBatchSize, png: false, stream };
      const [outcome] = await segmentFiles([scan], counted, options, () => undefined);
      expect(outcome.problem).toBeUndefined();
      await model.close();
      return { labels: Uint8Array.from(loadVolume(outcome.output!).volume.data), calls };
    };
    const symbolic = await openSegmenter(file, {});
    expect(symbolic.predictor.fixedBatch).toBeUndefined();
    expect(symbolic.description).not.toMatch(/, batch \d/);
    const byThree = await segment(symbolic, 3, 'sw3');
    expect(byThree.calls).toEqual([3, 3, 2]);
    const byOne = await segment(await openSegmenter(file, {}), 1, 'sw1');
    expect(byOne.calls).toEqual(Array(8).fill(1));
    expect(byThree.labels).toEqual(byOne.labels);
    expect(new Set(byThree.labels).size).toBeGreaterThan(1);

    // An older file keeps its fixed batch: 2 windows a run whatever --sw-batch-size says.
    const older = await openSegmenter(fixedBatchFile(2), {});
    expect(older.predictor.fixedBatch).toBe(2);
    expect(older.description).toMatch(/, batch 2$/);
    expect(readSegmenterFacts(fixedBatchFile(2)).batch).toBe(2);
    const fromOlder = await segment(older, 3, 'older');
    expect(fromOlder.calls).toEqual([2, 2, 2, 2]);
    expect(fromOlder.labels).toEqual(byOne.labels);

    // The command itself, at sw batch 3.
    const out = path.join(tmp, 'cli');
    const run = runVoco(['segment', scan, '--model', file, '--out', out, '--roi', '32', '--overlap', '0.5', '--sw-batch-size', '3']);
    expect(run.status).toBe(0);
    expect(Uint8Array.from(loadVolume(path.join(out, 'ct_seg.nii.gz')).volume.data)).toEqual(byThree.labels);
  }, 300_000);
});
