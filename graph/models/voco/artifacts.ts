import * as path from 'path';
import { Rng } from '../../../common/rng';
import { ConstantData } from '../../core/graph';
import { initialValues } from '../../nn/init';
import { OptimizerConfig } from '../../optim/config';
import { ExternalDataOptions } from '../../onnx/external-data';
import { writeArtifacts, writeForwardModel } from '../../onnx/artifacts';
import { ArtifactManifest, writeManifest } from '../../onnx/manifest';
import { writeSafetensors } from '../../../io/weights/safetensors';
import { VocoModelOptions, stepRows } from './options';
import { buildEncoderGraph, buildVocoGraph } from './model';
import { writeVocoPieces } from './pieces';
import { exportVocoStateDict } from './weights';

export const ENCODER_MODEL = 'encoder';
/** Freshly initialised weights under the upstream state-dict names (loadable by PyTorch and `voco grad`). */
export const INITIAL_WEIGHTS_FILE = 'initial_weights.safetensors';

export interface VocoArtifactOptions {
  readonly optimizer: OptimizerConfig;
  /** Rows of the encoder model's `crops` input. */
  readonly encoderBatch: number;
  /** Seed of the initial weights; none written when undefined. */
  readonly seed?: number;
  readonly externalData?: ExternalDataOptions;
  /**
   * Also write the step as pieces (voco-pieces.ts) with the backbone on this many rows at a time (a divisor of the
   * step's rows is used), for the runtime to use instead of the training model; 0, undefined or at least the
   * step's rows: the training model alone.
   */
  readonly cropsPerRun?: number;
}

/**
 * Writes the VoCo training, eval and optimizer models, the encoder model (crops in; `hidden0..4` and `embedding`
 * out, parameters as inputs), optionally the step in pieces, the manifest, and optionally the initial weights,
 * into `dir`.
 */
export function writeVocoArtifacts(dir: string, options: VocoModelOptions, artifact: VocoArtifactOptions): ArtifactManifest {
  const vg = buildVocoGraph(options, 'train');
  const { loss, ...extras } = vg.outputs;
  const kept = Object.fromEntries(
    Object.entries(extras).filter(([name]) => name.startsWith('loss.') || name.startsWith('ema.') || name === 'embeddings'),
  );
  const manifest = writeArtifacts(dir, {
    graph: vg.graph,
    loss,
    extras: kept,
    trainable: vg.trainable,
    optimizer: artifact.optimizer,
    externalData: artifact.externalData,
  });
  const encoder = buildEncoderGraph(options, artifact.encoderBatch);
  const entry = writeForwardModel(path.join(dir, `${ENCODER_MODEL}.onnx`), {
    inputs: [encoder.crops],
    outputs: encoder.outputs,
    externalData: artifact.externalData,
  });
  const pieces = artifact.cropsPerRun && artifact.cropsPerRun < stepRows(options) ? writeVocoPieces(dir, options, artifact.cropsPerRun, artifact.externalData) : undefined;
  const complete: ArtifactManifest = {
    ...manifest,
    models: { ...manifest.models, forward: { ...manifest.models.forward, [ENCODER_MODEL]: entry } },
    ...(pieces ? { pieces } : {}),
  };
  writeManifest(dir, complete);
  if (artifact.seed !== undefined) {
    const values = initialValues(vg.graph, new Rng(artifact.seed));
    const byName = new Map<string, Float32Array>([...values].map(([t, v]: [{ name: string }, ConstantData]) => [t.name, v as Float32Array]));
    writeSafetensors(path.join(dir, INITIAL_WEIGHTS_FILE), exportVocoStateDict(vg, byName));
  }
  return complete;
}
