/**
 * The model `voco segment --model` names, opened as an ONNX Runtime session over a segmenter: a `segmenter.onnx`
 * as it is, or weights (a fine-tuning checkpoint, a SwinUNETR state dict as `.pt`/`.safetensors`) baked once per
 * run into a segmenter written to a temporary folder. The model (feature size, channels) is inferred from the
 * weights' shapes; the roi is the one asked for, else the checkpoint's, else 96. What the model records of its
 * training (a checkpoint's run config, a segmenter.onnx's metadata) comes with it: the preprocessing its weights
 * learned on and the class names.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type * as ort from 'onnxruntime-node';
import { UserError } from '../../common/user-error';
import { Family, isFamily } from '../../data/pipeline';
import { PARAMETERS_GROUP, loadCheckpoint, loadCheckpointMeta } from '../../io/checkpoint';
import { SegmenterPreprocessing, readSegmenterFacts, writeSegmenterModel } from '../../graph/models/swinunetr/segmenter-file';
import { resolveSwinUnetrOptions } from '../../graph/models/swinunetr/options';
import { WeightSource, importSwinUnetrWeights, inferSwinUnetrOptions, readWeightSource } from '../../graph/models/swinunetr/weights';
import { runRecord, savedRecordedConfig } from '../finetune/record';
import { ProviderOptions, createSession } from '../session/providers';
import { SessionPredictor, sessionPredictor } from './session-predictor';
import type { Triple } from './window-plan';

/** A `--model` that cannot be used: an unknown kind of file, or a segmenter that does not fit the options. */
export class SegmenterModelError extends UserError {}

export const DEFAULT_SEGMENT_ROI = 96;

export interface SegmenterRequest extends ProviderOptions {
  /** Window side; default the checkpoint's training roi, else 96 (a segmenter.onnx has its own). */
  readonly roi?: number;
}

export interface OpenSegmenter {
  readonly session: ort.InferenceSession;
  readonly predictor: SessionPredictor;
  readonly roi: number;
  readonly inChannels: number;
  readonly outChannels: number;
  /** Class names by index when the checkpoint's run or the ONNX metadata records them. */
  readonly classNames?: ReadonlyMap<number, string>;
  /** The preprocessing the weights were trained on, when the model records it (a state dict does not). */
  readonly preprocessing?: RecordedPreprocessing;
  /** One line for the log: what was loaded. */
  readonly description: string;
  /** Releases the session and removes the temporary segmenter. */
  close(): Promise<void>;
}

/** A model's record of its preprocessing, and where it was read (for the log). */
export interface RecordedPreprocessing extends SegmenterPreprocessing {
  readonly family: Family;
  readonly from: string;
}

const WEIGHT_EXTENSIONS = ['.ckpt', '.pt', '.pth', '.safetensors'];

export async function openSegmenter(model: string, request: SegmenterRequest): Promise<OpenSegmenter> {
  if (!fs.existsSync(model) || !fs.statSync(model).isFile()) throw new SegmenterModelError(`--model ${model}: no such file`);
  const ext = path.extname(model).toLowerCase();
  if (ext === '.onnx') return openOnnxSegmenter(model, request);
  if (WEIGHT_EXTENSIONS.includes(ext)) return openWeightsSegmenter(model, request);
  throw new SegmenterModelError(`--model ${model}: expected a segmenter .onnx, a fine-tuning checkpoint (.ckpt) or a SwinUNETR state dict (.pt, .pth, .safetensors)`);
}

async function openOnnxSegmenter(file: string, request: SegmenterRequest): Promise<OpenSegmenter> {
  const session = await createSession(file, request);
  const shape = tensorShape(session.inputMetadata[0]);
  const outShape = tensorShape(session.outputMetadata[0]);
  const [cin, rx, ry, rz] = shape.slice(1);
  const cout = outShape[1];
  if (shape.length !== 5 || [cin, rx, ry, rz, cout].some((d) => typeof d !== 'number') || rx !== ry || ry !== rz) {
    await session.release();
    throw new SegmenterModelError(`--model ${file}: expected a segmenter taking [N, C, r, r, r] windows, its input is [${shape.join(', ')}]`);
  }
  const roi = rx as number;
  if (request.roi !== undefined && request.roi !== roi) {
    await session.release();
    throw new SegmenterModelError(`--roi ${request.roi}: ${file} takes windows of ${roi}^3 (export the checkpoint again for another roi)`);
  }
  let facts: ReturnType<typeof readSegmenterFacts>;
  try {
    facts = readSegmenterFacts(file);
    if (facts.preprocessing && !isFamily(facts.preprocessing.family)) throw new SegmenterModelError(`${file}: its metadata names family "${facts.preprocessing.family}", not a known one`);
  } catch (error) {
    await session.release();
    throw error;
  }
  const preprocessing = facts.preprocessing && { ...facts.preprocessing, family: facts.preprocessing.family as Family, from: `${file}'s metadata` };
  const predictor = sessionPredictor(session, { roi: [roi, roi, roi], inChannels: cin as number });
  const batch = predictor.fixedBatch !== undefined ? `, batch ${predictor.fixedBatch}` : '';
  return {
    session,
    predictor,
    roi,
    inChannels: cin as number,
    outChannels: cout as number,
    ...(facts.classNames ? { classNames: facts.classNames } : {}),
    ...(preprocessing ? { preprocessing } : {}),
    description: `${file}: segmenter of ${cin} channel(s) -> ${cout} classes, roi ${roi}${batch}`,
    close: () => session.release(),
  };
}

async function openWeightsSegmenter(file: string, request: SegmenterRequest): Promise<OpenSegmenter> {
  const checkpoint = path.extname(file).toLowerCase() === '.ckpt' ? loadCheckpoint<RunMeta>(file) : undefined;
  const tensors = checkpoint ? checkpoint.groups.get(PARAMETERS_GROUP) : undefined;
  if (checkpoint && !tensors) throw new SegmenterModelError(`--model ${file}: the checkpoint has no "${PARAMETERS_GROUP}" group`);
  const read: WeightSource = tensors ? { source: file, file, kind: 'checkpoint', tensors } : readWeightSource(file);
  const shape = inferSwinUnetrOptions(read.tensors, file);
  if (shape.outChannels === undefined) throw new SegmenterModelError(`--model ${file}: has no output layer (out.conv.conv.weight): not a segmentation model`);
  const recorded = checkpoint ? runFacts(checkpoint.meta, file) : {};
  const roi = request.roi ?? recorded.roi ?? DEFAULT_SEGMENT_ROI;
  const options = resolveSwinUnetrOptions({ ...shape, roi, batchSize: 1 });
  // Strict: a segmenter with a fresh layer would segment with random weights.
  const { values } = importSwinUnetrWeights(file, options, { seed: 0, strict: true, read });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-segmenter-'));
  try {
    const onnxFile = path.join(dir, 'segmenter.onnx');
    writeSegmenterModel(onnxFile, options, values, file);
    const session = await createSession(onnxFile, request);
    const predictor = sessionPredictor(session, { roi: [roi, roi, roi] as Triple, inChannels: options.inChannels });
    return {
      session,
      predictor,
      roi,
      inChannels: options.inChannels,
      outChannels: options.outChannels,
      ...(recorded.classNames ? { classNames: recorded.classNames } : {}),
      ...(recorded.preprocessing ? { preprocessing: recorded.preprocessing } : {}),
      description: `${file}: SwinUNETR feature size ${options.featureSize}, ${options.inChannels} channel(s) -> ${options.outChannels} classes, roi ${roi}`,
      close: async () => {
        await session.release();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** The part of a training run's checkpoint document read here. */
type RunMeta = { config?: unknown } | undefined;

export interface RecordedFacts {
  readonly roi?: number;
  readonly classNames?: ReadonlyMap<number, string>;
  readonly preprocessing?: RecordedPreprocessing;
}

/**
 * What a fine-tuning checkpoint records of its run (runtime/finetune/record.ts): the training roi, the
 * preprocessing (the abdomen family at the run's spacing) and the class names. A checkpoint of no run (as
 * `voco import-weights` writes) and any other weight file record nothing.
 */
export function recordedRunFacts(file: string): RecordedFacts {
  return path.extname(file).toLowerCase() === '.ckpt' ? runFacts(loadCheckpointMeta<RunMeta>(file), file) : {};
}

function runFacts(meta: RunMeta, file: string): RecordedFacts {
  const config = meta?.config;
  if (typeof config !== 'object' || config === null || Array.isArray(config)) return {};
  const fields = config as Record<string, unknown>;
  const roi = typeof fields.roi === 'number' && Number.isInteger(fields.roi) ? fields.roi : undefined;
  const { preprocessing, classNames } = runRecord(savedRecordedConfig(fields, file));
  return {
    ...(roi !== undefined ? { roi } : {}),
    ...(classNames ? { classNames } : {}),
    preprocessing: { ...preprocessing, from: `${file}'s run config` },
  };
}

function tensorShape(meta: ort.InferenceSession.ValueMetadata | undefined): ReadonlyArray<number | string> {
  return meta?.isTensor ? meta.shape : [];
}
