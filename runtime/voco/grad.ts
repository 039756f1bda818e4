import * as ort from 'onnxruntime-node';
import { UserError } from '../../common/user-error';
import { gradients } from '../../graph/autodiff/backward';
import { Tensor } from '../../graph/core/graph';
import { formatShape } from '../../graph/core/shape';
import { buildModel, encodeModel } from '../../graph/onnx/model';
import { sessionOptions } from '../session/providers';
import { readSafetensors, writeSafetensors } from '../../io/weights/safetensors';
import { NamedTensor, namedTensor } from '../../io/weights/tensor-map';
import { mul } from '../../graph/ops/elementwise';
import { reduceSum } from '../../graph/ops/reduce';
import { reshape } from '../../graph/ops/shape';
import { EMA_PREFIX, buildBackboneGraph, buildHeadsGraph, buildVocoGraph, embeddingWidth } from '../../graph/models/voco/model';
import { resolveVocoOptions, stepRows } from '../../graph/models/voco/options';
import { rowsPerPiece } from '../../graph/models/voco/pieces';
import { featureSizeOf, importVocoWeights, readWeightFile } from '../../graph/models/voco/weights';

/** A batch file that does not hold `images`, `crops` and `labels` laid out as VoCo expects. */
export class BatchFileError extends UserError {
  constructor(readonly file: string, problem: string) {
    super(`${file}: ${problem}`);
  }
}

export interface VocoBatchFile {
  readonly images: Float32Array;
  readonly crops: Float32Array;
  readonly labels: Float32Array;
  readonly batchSize: number;
  readonly swBatchSize: number;
  readonly baseCrops: number;
  readonly roi: number;
}

/**
 * Reads a VoCo batch: `images` [batch*sw, 1, r, r, r], `crops` [batch*bases, 1, r, r, r] and `labels`
 * [batch, sw, bases], float32, r a multiple of 32.
 */
export function readVocoBatch(file: string): VocoBatchFile {
  const tensors = readSafetensors(file);
  const get = (name: string, rank: number): NamedTensor & { data: Float32Array } => {
    const t = tensors.get(name);
    if (!t) throw new BatchFileError(file, `has no "${name}" tensor (a VoCo batch holds images, crops and labels)`);
    if (t.dtype !== 'float32' || t.shape.length !== rank) throw new BatchFileError(file, `"${name}" is ${t.dtype}${formatShape(t.shape)}, expected float32 of rank ${rank}`);
    return t as NamedTensor & { data: Float32Array };
  };
  const images = get('images', 5);
  const crops = get('crops', 5);
  const labels = get('labels', 3);
  const [batchSize, swBatchSize, baseCrops] = labels.shape;
  const roi = images.shape[2];
  const cube = (t: NamedTensor, rows: number) => formatShape(t.shape) === formatShape([rows, 1, roi, roi, roi]);
  if (!cube(images, batchSize * swBatchSize) || !cube(crops, batchSize * baseCrops)) {
    throw new BatchFileError(
      file,
      `images ${formatShape(images.shape)} and crops ${formatShape(crops.shape)} do not fit labels ${formatShape(labels.shape)} ` +
        `(expected [${batchSize * swBatchSize}, 1, r, r, r] and [${batchSize * baseCrops}, 1, r, r, r])`,
    );
  }
  return { images: images.data, crops: crops.data, labels: labels.data, batchSize, swBatchSize, baseCrops, roi };
}

export interface VocoGradOptions {
  /** Crops per backbone run when computing in pieces (memory grows with it); a divisor of the crop count is used. */
  readonly cropsPerRun?: number;
  /** Also write `swin.hidden0..4`, `student`, `teacher` and `logits.intra<i>` (volume i's [sw, bases] logits). */
  readonly intermediates?: boolean;
  /** CPU threads; ONNX Runtime's choice when omitted. */
  readonly threads?: number;
}

export interface VocoGradTimings {
  /** Building the graphs and opening their sessions. */
  readonly sessionSeconds: number;
  /** Running them. */
  readonly runSeconds: number;
}

export const DEFAULT_CROPS_PER_RUN = 2;

/** A CPU session computing `outputs` from `inputs`, fed by tensor. */
async function openSession(name: string, inputs: readonly Tensor[], outputs: readonly { name: string; tensor: Tensor }[], threads?: number) {
  // Without the arena each session returns its large buffers when a run ends, so the pieces' peaks do not add up.
  const session = await ort.InferenceSession.create(encodeModel(buildModel({ name, inputs, outputs })), {
    ...sessionOptions({ threads }),
    enableCpuMemArena: false,
  });
  const wanted = new Set(session.inputNames);
  return {
    run: async (values: (t: Tensor) => Float32Array): Promise<Record<string, Float32Array>> => {
      const feeds: Record<string, ort.Tensor> = {};
      for (const t of inputs) if (wanted.has(t.name)) feeds[t.name] = new ort.Tensor('float32', values(t), [...t.shape]);
      const out = await session.run(feeds);
      return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
    },
    release: () => session.release(),
  };
}

/**
 * The same numbers as one run of the training graph, computed in pieces so that memory stays a fraction of it:
 * the backbone runs forward on `cropsPerRun` crops at a time for the embeddings; the heads, loss and EMA run on all
 * embeddings at once (batch statistics need every row) and give the loss gradient with respect to the embeddings;
 * then the backbone runs again per piece, back-propagating that gradient, and the pieces' gradients are summed.
 */
export async function computeVocoGradients(
  weightsFile: string,
  batchFile: string,
  options: VocoGradOptions = {},
): Promise<{ tensors: NamedTensor[]; timings: VocoGradTimings }> {
  const batch = readVocoBatch(batchFile);
  const weights = readWeightFile(weightsFile);
  const started = Date.now();
  const o = resolveVocoOptions({
    featureSize: featureSizeOf(weightsFile, weights),
    roi: batch.roi,
    batchSize: batch.batchSize,
    swBatchSize: batch.swBatchSize,
    baseCrops: batch.baseCrops,
    featureDropout: 0,
    dropPathRate: 0,
  });
  const full = buildVocoGraph(o, 'train');
  const values = importVocoWeights(weightsFile, full, weights);
  const rows = stepRows(batch);
  const k = rowsPerPiece(rows, options.cropsPerRun ?? DEFAULT_CROPS_PER_RUN);
  const width = embeddingWidth(o.featureSize);

  const net = buildBackboneGraph(o, k);
  const backboneParams = net.graph.parameters.map((p) => p.tensor);
  const cotangent = net.graph.input('embeddings_cotangent', 'float32', [k, width]);
  const pieceLoss = reduceSum(reshape(mul(net.embeddings, cotangent), [k * width]), [0]);
  const backboneGrads = gradients(pieceLoss, backboneParams);
  const hiddenOutputs = options.intermediates ? net.hidden.map((t, i) => ({ name: `swin.hidden${i}`, tensor: t })) : [];
  const forward = await openSession('voco_backbone', [...backboneParams, net.crops], [{ name: 'embeddings', tensor: net.embeddings }, ...hiddenOutputs], options.threads);
  const backward = await openSession(
    'voco_backbone_grad',
    [...backboneParams, net.crops, cotangent],
    backboneParams.map((p) => ({ name: `grad.${p.name}`, tensor: backboneGrads.get(p)! })),
    options.threads,
  );

  const heads = buildHeadsGraph(o, 'train');
  const headParams = heads.graph.parameters.map((p) => p.tensor);
  const studentParams = heads.graph.parameters.filter((p) => p.trainable).map((p) => p.tensor);
  const headGrads = gradients(heads.outputs.loss, [...studentParams, heads.embeddings]);
  const emaOutputs = Object.keys(heads.outputs)
    .filter((name) => name.startsWith(EMA_PREFIX))
    .map((name) => ({ name: `${EMA_PREFIX}${name.slice(`${EMA_PREFIX}teacher.`.length)}`, tensor: heads.outputs[name] }));
  const headSession = await openSession(
    'voco_heads',
    [...headParams, heads.embeddings, heads.labels],
    [
      ...['loss', 'loss.intra', 'loss.inter', 'loss.reg', 'student', 'teacher', 'logits.intra'].map((name) => ({ name, tensor: heads.outputs[name] })),
      ...emaOutputs,
      ...studentParams.map((p) => ({ name: `grad.${p.name}`, tensor: headGrads.get(p)! })),
      { name: 'grad.embeddings', tensor: headGrads.get(heads.embeddings)! },
    ],
    options.threads,
  );
  const sessionsReady = Date.now();

  const voxels = batch.roi ** 3;
  const allCrops = new Float32Array(rows * voxels);
  allCrops.set(batch.images);
  allCrops.set(batch.crops, batch.images.length);
  const piece = (data: Float32Array, i: number, per: number) => data.subarray(i * k * per, (i + 1) * k * per);
  const pieces = rows / k;
  const param = (t: Tensor) => values.get(t.name)!;

  const embeddings = new Float32Array(rows * width);
  const hidden: Float32Array[][] = net.hidden.map(() => []);
  for (let i = 0; i < pieces; i++) {
    const out = await forward.run((t) => (t === net.crops ? piece(allCrops, i, voxels) : param(t)));
    embeddings.set(out.embeddings, i * k * width);
    hiddenOutputs.forEach(({ name }, h) => hidden[h].push(out[name]));
  }
  const head = await headSession.run((t) => (t === heads.embeddings ? embeddings : t === heads.labels ? batch.labels : param(t)));

  const sums = new Map(backboneParams.map((p) => [p.name, new Float64Array(values.get(p.name)!.length)]));
  for (let i = 0; i < pieces; i++) {
    const out = await backward.run((t) =>
      t === net.crops ? piece(allCrops, i, voxels) : t === cotangent ? piece(head['grad.embeddings'], i, width) : param(t),
    );
    for (const [name, sum] of sums) {
      const g = out[`grad.${name}`];
      for (let j = 0; j < g.length; j++) sum[j] += g[j];
    }
  }
  await Promise.all([forward.release(), backward.release(), headSession.release()]);
  const finished = Date.now();

  const scalar = (name: string) => namedTensor(name, 'float32', [1], head[name]);
  const tensors: NamedTensor[] = [
    ...['loss', 'loss.intra', 'loss.inter', 'loss.reg'].map(scalar),
    namedTensor('embeddings', 'float32', [rows, width], embeddings),
    ...emaOutputs.map(({ name, tensor }) => namedTensor(name, 'float32', tensor.shape, head[name])),
    ...full.trainable.map((p) =>
      namedTensor(`grad.${p.name}`, 'float32', p.shape, sums.has(p.name) ? Float32Array.from(sums.get(p.name)!) : head[`grad.${p.name}`]),
    ),
  ];
  if (options.intermediates) {
    tensors.push(namedTensor('student', 'float32', heads.outputs.student.shape, head.student));
    tensors.push(namedTensor('teacher', 'float32', heads.outputs.teacher.shape, head.teacher));
    net.hidden.forEach((t, h) => tensors.push(namedTensor(`swin.hidden${h}`, 'float32', [rows, ...t.shape.slice(1)], concatenated(hidden[h]))));
    tensors.push(...perVolumeLogits(head['logits.intra'], batch));
  }
  return {
    tensors,
    timings: { sessionSeconds: (sessionsReady - started) / 1000, runSeconds: (finished - sessionsReady) / 1000 },
  };
}

function concatenated(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** `logits.intra` [batch, sw, bases] split into `logits.intra<i>` [sw, bases], as the reference names them. */
function perVolumeLogits(all: Float32Array, batch: VocoBatchFile): NamedTensor[] {
  const per = batch.swBatchSize * batch.baseCrops;
  return Array.from({ length: batch.batchSize }, (_, i) =>
    namedTensor(`logits.intra${i}`, 'float32', [batch.swBatchSize, batch.baseCrops], all.slice(i * per, (i + 1) * per)),
  );
}

/** computeVocoGradients, written to `outFile` as safetensors (atomically). */
export async function writeVocoGradients(weightsFile: string, batchFile: string, outFile: string, options: VocoGradOptions = {}): Promise<VocoGradTimings> {
  const { tensors, timings } = await computeVocoGradients(weightsFile, batchFile, options);
  writeSafetensors(outFile, tensors.filter((t) => t.name !== 'logits.intra'));
  return timings;
}
