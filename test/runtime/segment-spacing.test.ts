/**
 * `voco segment` preprocesses each scan as the model's weights were trained. A fine-tuning checkpoint whose run
 * config is the built-in run's (tiny, roi 32, the four organs, 3 mm: what `npm run finetune` writes), with fresh
 * weights, segments a CT-like scan on an LPS grid of 1.2 x 1.5 x 2 mm voxels: via the .ckpt and via its exported
 * segmenter.onnx (whose metadata records family, spacing and class names) both resample to 3 mm (4 windows at
 * overlap 0.5, not the 32 of 1.5 mm), give the labels of the steps done by hand at 3 mm on the scan's own grid
 * (shape and affine), and draw the picture with the organ names. `--spacing` overrides the record; a state dict,
 * which records nothing (nor does its export), keeps the abdomen family's 1.5 mm. What the record reads from a run config (a datalist's
 * names, a datalist gone, a bad spacing) and half or unknown records in a segmenter.onnx are checked on files.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { onnx } from 'onnx-proto';
import type * as ort from 'onnxruntime-node';
import { DEFAULT_FINETUNE_CONFIG } from '../../cli/finetune';
import { loadVolume } from '../../data/nifti/read';
import { writeNifti } from '../../data/nifti/write';
import { organLabelTable } from '../../data/phantom/organs';
import { FAMILY_PARAMS } from '../../data/pipeline';
import { renderLabelSlices } from '../../data/render/label-slices';
import { preprocessImageForInference } from '../../data/segmentation/preprocess';
import { invertLabels } from '../../data/transforms/invert';
import { columnNorms } from '../../data/transforms/matrix';
import type { ConstantData } from '../../graph/core/graph';
import { buildSegmenterGraph } from '../../graph/models/swinunetr/model';
import { SEGMENTER_METADATA, readSegmenterFacts, writeSegmenterModel } from '../../graph/models/swinunetr/segmenter-file';
import { writeSwinUnetrWeights } from '../../graph/models/swinunetr/weights';
import { freshVocoValues } from '../../graph/models/voco/weights';
import { writeForwardModel } from '../../graph/onnx/artifacts';
import { recordedRunFacts } from '../../runtime/segment/segmenter-source';
import { sessionPredictor } from '../../runtime/segment/session-predictor';
import { argmaxChannels, slidingWindowInference } from '../../runtime/segment/sliding-window';
import { planWindows } from '../../runtime/segment/window-plan';
import { createSession } from '../../runtime/session/providers';
import { runVoco } from '../helpers/cli';

const ORGANS = DEFAULT_FINETUNE_CONFIG.phantomOrgans!;
const MODEL = { featureSize: DEFAULT_FINETUNE_CONFIG.featureSize, inChannels: 1, outChannels: ORGANS.length + 1, roi: DEFAULT_FINETUNE_CONFIG.roi };
const NAMES = organLabelTable(ORGANS);
const OVERLAP = ['--overlap', '0.5'];

type Triple = [number, number, number];

describe('voco segment preprocesses as the model was trained', () => {
  let tmp: string;
  let values: Map<string, Float32Array>;
  let ckpt: string;
  let scan: string;
  let session: ort.InferenceSession | undefined;
  /** The steps by hand at a spacing: windows, labels on the preprocessed grid, the picture, labels on the scan's grid. */
  let byHand: (spacing: Triple) => Promise<{ windows: number; spacing: Triple; picture: Buffer; unnamed: Buffer; labels: Uint8Array }>;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'segment-spacing-'));
    values = freshVocoValues(buildSegmenterGraph({ ...MODEL, batchSize: 1 }, 1), 7);
    ckpt = path.join(tmp, 'step-00000200.ckpt');
    writeSwinUnetrWeights(ckpt, MODEL, values, { config: { ...DEFAULT_FINETUNE_CONFIG, spacing: [3, 3, 3] } });

    // A body (an ellipsoid of 110 x 100 x 54 mm of soft tissue with a brighter core) in air, on an LPS grid.
    const shape: Triple = [100, 76, 30];
    const voxel = [1.2, 1.5, 2.0];
    const data = new Float32Array(shape[0] * shape[1] * shape[2]);
    let i = 0;
    for (let x = 0; x < shape[0]; x++) {
      for (let y = 0; y < shape[1]; y++) {
        for (let z = 0; z < shape[2]; z++) {
          const [u, v, w] = [(x - shape[0] / 2) * voxel[0], (y - shape[1] / 2) * voxel[1], (z - shape[2] / 2) * voxel[2]];
          const r = (u / 55) ** 2 + (v / 50) ** 2 + (w / 27) ** 2;
          data[i++] = r > 1 ? -1000 : r < 0.15 ? 220 : 40 + 60 * Math.sin(u / 9) * Math.cos(v / 13) + 20 * Math.sin(w / 5);
        }
      }
    }
    scan = path.join(tmp, 'ct.nii.gz');
    writeNifti(scan, { data, shape, affine: [-voxel[0], 0, 0, 60, 0, -voxel[1], 0, 57, 0, 0, voxel[2], -30, 0, 0, 0, 1] }, { datatype: 'int16' });

    const net = buildSegmenterGraph({ ...MODEL, batchSize: 2 }, 2);
    const model = path.join(tmp, 'by-hand.onnx');
    writeForwardModel(model, { inputs: [net.image], outputs: { logits: net.logits }, weights: new Map([...values].map(([k, v]) => [k, v as ConstantData])) });
    session = await createSession(model, { threads: 1 });
    const { predict } = sessionPredictor(session, { roi: [32, 32, 32], inChannels: 1 });
    byHand = async (spacing) => {
      const { volume, record } = preprocessImageForInference(scan, 'abdomen', { ...FAMILY_PARAMS.abdomen, pixdim: spacing });
      const logits = await slidingWindowInference({ data: volume.data, channels: 1, shape: volume.shape }, predict, { roi: 32, overlap: 0.5, swBatchSize: 2, mode: 'constant' });
      const labels = { data: Float32Array.from(argmaxChannels(logits)), shape: volume.shape, affine: volume.affine };
      return {
        windows: planWindows(volume.shape, 32, 0.5).windows,
        spacing: columnNorms(volume.affine),
        picture: renderLabelSlices(volume, labels, NAMES, [0, 1]),
        unnamed: renderLabelSlices(volume, labels, {}, [0, 1]),
        labels: Uint8Array.from(invertLabels(labels, record).data),
      };
    };
  }, 300_000);
  afterAll(async () => {
    await session?.release();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** `voco segment` of the scan with `model`: the first stderr line, the windows reported, the label map and picture. */
  function segment(model: string, out: string, ...extra: string[]) {
    const dir = path.join(tmp, out);
    const run = runVoco(['segment', scan, '--model', model, '--out', dir, '--png', ...OVERLAP, ...extra]);
    if (run.status !== 0) throw new Error(`voco segment failed (${run.status}):\n${run.stderr}`);
    const written = loadVolume(path.join(dir, 'ct_seg.nii.gz')).volume;
    const input = loadVolume(scan).volume;
    expect(written.shape).toEqual(input.shape);
    expect(written.affine).toEqual(input.affine);
    return {
      first: run.stderr.split('\n')[0],
      windows: Number(/\((\d+) windows\)/.exec(run.stdout)?.[1]),
      labels: Uint8Array.from(written.data),
      picture: fs.readFileSync(path.join(dir, 'ct_seg.png')),
    };
  }

  test('the checkpoint and its exported segmenter.onnx both segment at the run\'s 3 mm, with its organ names', async () => {
    const hand = await byHand([3, 3, 3]);
    expect(hand.spacing.map((s) => +s.toFixed(6))).toEqual([3, 3, 3]);
    expect(hand.windows).toBe(4);
    expect(new Set(hand.labels).size).toBeGreaterThan(1);
    // The legend names a class present: a picture with "class N" would differ.
    expect(hand.picture.equals(hand.unnamed)).toBe(false);

    const fromCkpt = segment(ckpt, 'ckpt');
    expect(fromCkpt.first).toBe(`preprocessing: spacing 3 x 3 x 3 mm (${ckpt}'s run config), family abdomen (${ckpt}'s run config)`);
    expect(fromCkpt.windows).toBe(4);
    expect(fromCkpt.labels).toEqual(hand.labels);
    expect(fromCkpt.picture.equals(hand.picture)).toBe(true);

    // Exported from a copy of the checkpoint, which is then gone: the deployed file alone segments.
    const copy = path.join(tmp, 'copy.ckpt');
    fs.copyFileSync(ckpt, copy);
    const dir = path.join(tmp, 'deploy');
    const exported = runVoco(['export', copy, '--out', dir]);
    expect(exported.status).toBe(0);
    expect(exported.stdout).toContain(`segmenter metadata: preprocessing abdomen family at 3 x 3 x 3 mm and class names of 5 classes, from ${copy}'s run config`);
    fs.rmSync(copy);
    const onnxFile = path.join(dir, 'segmenter.onnx');
    expect(readSegmenterFacts(onnxFile)).toEqual({
      roi: 32,
      classNames: new Map(Object.entries(NAMES).map(([k, v]) => [Number(k), v])),
      preprocessing: { family: 'abdomen', spacing: [3, 3, 3] },
    });
    const fromOnnx = segment(onnxFile, 'onnx');
    expect(fromOnnx.first).toBe(`preprocessing: spacing 3 x 3 x 3 mm (${onnxFile}'s metadata), family abdomen (${onnxFile}'s metadata)`);
    expect(fromOnnx.windows).toBe(4);
    expect(fromOnnx.labels).toEqual(hand.labels);
    expect(fromOnnx.picture.equals(hand.picture)).toBe(true);
  }, 300_000);

  test('--spacing overrides the record; a state dict keeps the abdomen family\'s 1.5 mm', async () => {
    const hand = await byHand([6, 6, 6]);
    expect(hand.windows).toBe(1);
    const coarse = segment(ckpt, 'coarse', '--spacing', '6', '6', '6');
    expect(coarse.first).toBe(`preprocessing: spacing 6 x 6 x 6 mm (--spacing), family abdomen (${ckpt}'s run config)`);
    expect(coarse.windows).toBe(1);
    expect(coarse.labels).toEqual(hand.labels);

    const stateDict = path.join(tmp, 'weights.safetensors');
    writeSwinUnetrWeights(stateDict, MODEL, values);
    const plain = segment(stateDict, 'state-dict', '--roi', '32');
    expect(plain.first).toBe("preprocessing: spacing 1.5 x 1.5 x 1.5 mm (the abdomen family's; the model records none), family abdomen (the default; the model records none)");
    expect(plain.windows).toBe(32);
    const fromStateDict = path.join(tmp, 'state-dict-export');
    const exported = runVoco(['export', stateDict, '--out', fromStateDict, '--formats', 'onnx', '--roi', '32']);
    expect(exported.status).toBe(0);
    expect(exported.stdout).toContain(`segmenter metadata: no class names, no preprocessing (${stateDict} records no fine-tuning run`);
    expect(readSegmenterFacts(path.join(fromStateDict, 'segmenter.onnx')).preprocessing).toBeUndefined();

    const bad = runVoco(['segment', scan, '--model', ckpt, '--out', path.join(tmp, 'bad'), '--spacing', '3', '3']);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim()).toBe('voco: --spacing must be three voxel sizes in mm > 0 (x y z), got 3 3');
  }, 300_000);

  test('the record of a run config: a datalist\'s names, none once it is gone, a bad spacing in one line', () => {
    const datalist = path.join(tmp, 'dataset.json');
    fs.writeFileSync(datalist, JSON.stringify({ labels: { '0': 'background', '1': 'tumour' }, training: [] }));
    const run = path.join(tmp, 'datalist-run.ckpt');
    writeSwinUnetrWeights(run, MODEL, values, { config: { ...DEFAULT_FINETUNE_CONFIG, data: datalist, spacing: [2, 2, 2.5] } });
    const preprocessing = { family: 'abdomen', spacing: [2, 2, 2.5], from: `${run}'s run config` };
    expect(recordedRunFacts(run)).toEqual({ roi: 32, classNames: new Map([[0, 'background'], [1, 'tumour']]), preprocessing });
    fs.rmSync(datalist);
    expect(recordedRunFacts(run)).toEqual({ roi: 32, preprocessing });

    // A datalist run at the chain's own spacing (config.spacing undefined): the abdomen family's 1.5 mm.
    writeSwinUnetrWeights(run, MODEL, values, { config: { ...DEFAULT_FINETUNE_CONFIG, data: datalist } });
    expect(recordedRunFacts(run).preprocessing).toEqual({ family: 'abdomen', spacing: [1.5, 1.5, 1.5], from: `${run}'s run config` });

    writeSwinUnetrWeights(run, MODEL, values, { config: { ...DEFAULT_FINETUNE_CONFIG, spacing: [3, 0, 3] } });
    expect(() => recordedRunFacts(run)).toThrow(`${run}: config.spacing is [3,0,3], not three voxel sizes in mm > 0`);
    // A checkpoint of no run (voco import-weights) records nothing.
    writeSwinUnetrWeights(run, MODEL, values);
    expect(recordedRunFacts(run)).toEqual({});
  });

  test('a segmenter.onnx with half a preprocessing record or an unknown family is refused in one line', () => {
    const file = path.join(tmp, 'recorded.onnx');
    writeSegmenterModel(file, MODEL, values, 'test', { preprocessing: { family: 'abdomen', spacing: [3, 3, 3] } });
    const edited = (name: string, edit: (props: onnx.IStringStringEntryProto[]) => onnx.IStringStringEntryProto[]) => {
      const model = onnx.ModelProto.decode(fs.readFileSync(file));
      model.metadataProps = edit(model.metadataProps).map((p) => onnx.StringStringEntryProto.create(p));
      const out = path.join(tmp, name);
      fs.writeFileSync(out, onnx.ModelProto.encode(model).finish());
      return out;
    };
    const half = edited('half.onnx', (props) => props.filter((p) => p.key !== SEGMENTER_METADATA.spacing));
    expect(() => readSegmenterFacts(half)).toThrow(`${half}: its metadata has voco.family without voco.spacing_mm`);
    const pelvis = edited('pelvis.onnx', (props) => props.map((p) => (p.key === SEGMENTER_METADATA.family ? { key: p.key, value: 'pelvis' } : p)));
    const run = runVoco(['segment', scan, '--model', pelvis, '--out', path.join(tmp, 'pelvis')]);
    expect(run.status).toBe(2);
    expect(run.stderr.trim()).toBe(`voco: ${pelvis}: its metadata names family "pelvis", not a known one`);
  });
});
