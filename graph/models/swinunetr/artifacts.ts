import * as path from 'path';
import { UserError } from '../../../common/user-error';
import { ExternalDataOptions } from '../../onnx/external-data';
import { ForwardSpec, writeArtifacts, writeForwardModel } from '../../onnx/artifacts';
import { ArtifactManifest, writeManifest } from '../../onnx/manifest';
import { OptimizerConfig } from '../../optim/config';
import { writeSafetensors } from '../../../io/weights/safetensors';
import { isEncoderParameter } from '../swinunetr-encoder';
import { INITIAL_WEIGHTS_FILE } from '../voco/artifacts';
import { exportVocoStateDict, freshVocoValues } from '../voco/weights';
import { SegmenterGraph, buildSegmenterGraph, buildSwinUnetrTrainingGraph } from './model';
import { SWINUNETR_OPTIMIZER, SwinUnetrOptions } from './options';

/** The forward model for inference: `image` in, `logits` out. */
export const SEGMENTER_MODEL = 'segmenter';
export const LOGITS_OUTPUT = 'logits';
/** The symbolic leading axis of the segmenter's `image` and `logits`: windows per run. */
export const SEGMENTER_BATCH_DIM = 'batch';

/**
 * The segmenter as a forward model taking any number of windows ([batch, Cin, r, r, r] -> [batch, Cout, r, r, r]):
 * built with one window, its batch axis symbolic.
 */
export function segmenterForward(options: Pick<SwinUnetrOptions, 'featureSize' | 'inChannels' | 'outChannels' | 'roi'>): { seg: SegmenterGraph; spec: ForwardSpec } {
  const seg = buildSegmenterGraph({ ...options, batchSize: 1 });
  return { seg, spec: { inputs: [seg.image], outputs: { [LOGITS_OUTPUT]: seg.logits }, batchDim: SEGMENTER_BATCH_DIM } };
}

export interface SwinUnetrArtifactOptions {
  /** Upstream's AdamW (lr is the optimizer model's input) unless given. */
  readonly optimizer?: OptimizerConfig;
  /** The training and eval models also output `logits` (for parity checks; holds them in memory after a step). */
  readonly logits?: boolean;
  /** Train the decoders and `out` only: the encoder's parameters become state, with no gradients or moments. */
  readonly freezeEncoder?: boolean;
  /** Seed of the initial weights written under MONAI's state-dict names; none written when undefined. */
  readonly seed?: number;
  readonly externalData?: ExternalDataOptions;
  /**
   * Crops per run of the training and eval models (a divisor of the batch): a step then runs in batch / cropsPerRun
   * parts with the gradients averaged (manifest `accumulation`), the same numbers as one run, with the memory of
   * one part. Undefined or the whole batch: one run.
   */
  readonly cropsPerRun?: number;
}

/** A step's crops in parts of `cropsPerRun` that do not divide the batch. */
export class CropsPerRunError extends UserError {}

/**
 * Writes the SwinUNETR fine-tuning artifacts into `dir`: the training model (parameters, `image`, `label` ->
 * `loss`, `loss.dice`, `loss.ce`, `loss.dice.per_item_class`, optionally `logits`, and `<param>_grad` per
 * parameter), the eval model (the same without gradients), the optimizer model, the `segmenter` forward model
 * (parameters as inputs, any number of windows) and the manifest; with a seed also `initial_weights.safetensors`.
 */
export function writeSwinUnetrArtifacts(dir: string, options: SwinUnetrOptions, artifact: SwinUnetrArtifactOptions = {}): ArtifactManifest {
  const rowsPerRun = artifact.cropsPerRun ?? options.batchSize;
  if (!(Number.isInteger(rowsPerRun) && rowsPerRun >= 1 && options.batchSize % rowsPerRun === 0)) {
    throw new CropsPerRunError(`crops per run ${rowsPerRun} must be a whole number >= 1 that divides the ${options.batchSize} crops of a step`);
  }
  const tg = buildSwinUnetrTrainingGraph({ ...options, batchSize: rowsPerRun });
  const { loss, logits, ...parts } = tg.outputs;
  const manifest = writeArtifacts(dir, {
    graph: tg.graph,
    loss,
    extras: { ...parts, ...(artifact.logits ? { [LOGITS_OUTPUT]: logits } : {}) },
    optimizer: artifact.optimizer ?? SWINUNETR_OPTIMIZER,
    ...(artifact.freezeEncoder ? { trainable: tg.graph.parameters.filter((p) => p.trainable && !isEncoderParameter(p.tensor.name)).map((p) => p.tensor) } : {}),
    externalData: artifact.externalData,
  });
  const entry = writeForwardModel(path.join(dir, `${SEGMENTER_MODEL}.onnx`), { ...segmenterForward(options).spec, externalData: artifact.externalData });
  const accumulation = rowsPerRun < options.batchSize ? { accumulation: { rows: options.batchSize, rowsPerRun } } : {};
  const complete: ArtifactManifest = { ...manifest, ...accumulation, models: { ...manifest.models, forward: { [SEGMENTER_MODEL]: entry } } };
  writeManifest(dir, complete);
  if (artifact.seed !== undefined) {
    writeSafetensors(path.join(dir, INITIAL_WEIGHTS_FILE), exportVocoStateDict(tg, freshVocoValues(tg, artifact.seed)));
  }
  return complete;
}
