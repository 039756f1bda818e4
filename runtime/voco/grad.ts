import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { UserError } from '../../common/user-error';
import { formatShape } from '../../graph/core/shape';
import { EMA_PREFIX, buildVocoGraph } from '../../graph/models/voco/model';
import { resolveVocoOptions } from '../../graph/models/voco/options';
import { INTERMEDIATE_HEAD_OUTPUTS, writeVocoPieces } from '../../graph/models/voco/pieces';
import { featureSizeOf, importVocoWeights, readWeightFile } from '../../graph/models/voco/weights';
import { gradientName } from '../../graph/optim/optimizer';
import { readSafetensors, writeSafetensors } from '../../io/weights/safetensors';
import { NamedTensor, namedTensor } from '../../io/weights/tensor-map';
import { Feeder, PiecewiseStep } from '../session/piecewise';

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

const LOSS_NAMES = ['loss', 'loss.intra', 'loss.inter', 'loss.reg'];

/**
 * One training step's outputs and gradients for `weightsFile` on the batch in `batchFile`, through the same
 * piecewise step as training (runtime/session/piecewise.ts): the backbone forward on `cropsPerRun` crops at a time,
 * the heads, loss and EMA on all embeddings at once (batch statistics need every row), the backbone backward per
 * piece with the pieces' gradients summed. The piece models are written to a temporary folder and removed after.
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
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-grad-'));
  try {
    const pieces = writeVocoPieces(dir, o, options.cropsPerRun ?? DEFAULT_CROPS_PER_RUN, undefined, options.intermediates);
    const step = await PiecewiseStep.open(dir, pieces, { threads: options.threads });
    const sessionsReady = Date.now();
    const { heads, backboneForward } = pieces.models;
    const feeds: Feeder = (model, other) =>
      Object.fromEntries(
        model.inputs.map((io) => [io.name, io.role === 'parameter' || io.role === 'state' ? new ort.Tensor('float32', values.get(io.name)!, [...io.shape]) : other(io)]),
      );
    const inputs: Record<string, ort.Tensor> = {
      images: new ort.Tensor('float32', batch.images, [batch.batchSize * batch.swBatchSize, 1, batch.roi, batch.roi, batch.roi]),
      crops: new ort.Tensor('float32', batch.crops, [batch.batchSize * batch.baseCrops, 1, batch.roi, batch.roi, batch.roi]),
      labels: new ort.Tensor('float32', batch.labels, [batch.batchSize, batch.swBatchSize, batch.baseCrops]),
    };
    const ema = heads.outputs.filter((io) => io.name.startsWith(EMA_PREFIX));
    const hidden = backboneForward.outputs.filter((io) => io.name !== pieces.embeddings && !pieces.saved?.includes(io.name));
    const extras = [...LOSS_NAMES.slice(1), pieces.embeddings, ...ema.map((io) => io.name), ...hidden.map((io) => io.name)];
    if (options.intermediates) extras.push(...INTERMEDIATE_HEAD_OUTPUTS);
    const out = await step.run(feeds, (name) => inputs[name], extras);
    await step.release();
    const finished = Date.now();

    const tensor = (name: string, as = name) => namedTensor(as, 'float32', out[name].dims, out[name].data as Float32Array);
    const tensors: NamedTensor[] = [
      ...LOSS_NAMES.map((name) => namedTensor(name, 'float32', [1], out[name].data as Float32Array)),
      tensor(pieces.embeddings),
      // The teacher after its EMA step, under the teacher's own key behind the prefix (`ema.layer1.weight`).
      ...ema.map((io) => tensor(io.name, `${EMA_PREFIX}${io.name.slice(`${EMA_PREFIX}teacher.`.length)}`)),
      ...full.trainable.map((p) => tensor(gradientName(p.name), `grad.${p.name}`)),
    ];
    if (options.intermediates) {
      tensors.push(tensor('student'), tensor('teacher'), ...hidden.map((io) => tensor(io.name)));
      tensors.push(...perVolumeLogits(out['logits.intra'].data as Float32Array, batch));
    }
    return { tensors, timings: { sessionSeconds: (sessionsReady - started) / 1000, runSeconds: (finished - sessionsReady) / 1000 } };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
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
  writeSafetensors(outFile, tensors);
  return timings;
}
