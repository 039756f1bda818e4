/**
 * The artifact manifest: the one contract between the graph side that writes training artifacts and the runtime
 * that runs them. It names every input and output of every model with its dtype, shape and role, and every
 * parameter with how it is initialised.
 */
import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../../common/user-error';
import { DType } from '../core/dtype';
import { InitSpec } from '../core/init';
import { ResolvedOptimizerConfig } from '../optim/config';
import { writeAll, writeFileAtomically } from '../../common/atomic-file';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT = 'voco-onnx-artifacts';
export const MANIFEST_VERSION = 1;
/** Holds the initial values of parameters whose InitSpec is `values` (computed at build time). */
export const INITIAL_VALUES_FILE = 'initial_values.safetensors';

export type IoRole = 'parameter' | 'state' | 'input' | 'gradient' | 'output' | 'optimizer-state' | 'hyperparameter';

export interface IoEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly role: IoRole;
  /** For an optimizer output: the input (parameter or optimizer state) it replaces after the step. */
  readonly updates?: string;
  /** The leading axis is symbolic under this name (any number of rows); `shape` is as built, with one row. */
  readonly batchDim?: string;
}

export interface ModelEntry {
  /** File name relative to the artifact folder. */
  readonly file: string;
  /** External-data file beside it, when the model is too large for one protobuf. */
  readonly dataFile?: string;
  readonly inputs: readonly IoEntry[];
  readonly outputs: readonly IoEntry[];
}

/** An InitSpec as JSON: `values` point into INITIAL_VALUES_FILE instead of holding the numbers. */
export type InitEntry = Exclude<InitSpec, { kind: 'values' }> | { readonly kind: 'values'; readonly file: string };

export interface ParameterEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly trainable: boolean;
  readonly init: InitEntry;
}

/**
 * A training step computed in pieces, so that memory holds one piece of the batch's rows at a time: the backbone
 * runs forward on `cropsPerRun` rows at a time for the embeddings; the heads model takes every row's embeddings
 * (batch statistics need them all) and gives the loss, the extras, the head gradients and the loss gradient with
 * respect to the embeddings; the backward model then runs per piece (recomputing its forward) and the pieces'
 * backbone gradients are summed. The training model's batch inputs stay the step's inputs.
 */
export interface PiecesEntry {
  /** Rows per backbone run (a divisor of `rows`). */
  readonly cropsPerRun: number;
  /** Rows of a step: the batch inputs named in `rowSources` concatenated along their first axis. */
  readonly rows: number;
  readonly rowSources: readonly string[];
  /**
   * Input names of the piece models: `rowsInput` takes the piece's rows, `cotangent` (backward) the piece's rows of
   * the embeddings gradient. Every other batch input [rows, ...] of a backbone model is the training model's input
   * of the same name, cut to the piece's rows.
   */
  readonly rowsInput: string;
  readonly cotangent: string;
  /** The forward model's output and the heads model's input [rows, width]. */
  readonly embeddings: string;
  /** The heads model's output: the loss gradient with respect to `embeddings`. */
  readonly embeddingsGradient: string;
  /**
   * Forward outputs that the backward model reads for the same piece instead of recomputing them (the window
   * attention outputs). Absent in artifacts written before it existed: their backward recomputes everything.
   */
  readonly saved?: readonly string[];
  readonly models: {
    /** Backbone parameters and a piece's rows -> `embeddings` of the piece. */
    readonly backboneForward: ModelEntry;
    /** Backbone parameters, a piece's rows and its `cotangent` -> `<param>_grad` per backbone parameter. */
    readonly backboneBackward: ModelEntry;
    /** Head parameters and state, `embeddings` and the other batch inputs -> loss, extras, `<param>_grad`s, `embeddingsGradient`. */
    readonly heads: ModelEntry;
  };
}

/**
 * A step whose rows run through the training model a few at a time, for a loss that is the mean of per-row terms
 * (gradient accumulation): its batch inputs take `rowsPerRun` rows, a step's `rows` rows run in rows / rowsPerRun
 * parts, and the loss, scalar extras and gradients are the parts' means; extras with a leading rows axis are
 * concatenated.
 */
export interface AccumulationEntry {
  readonly rows: number;
  /** A divisor of `rows`. */
  readonly rowsPerRun: number;
}

export interface ArtifactManifest {
  readonly format: typeof MANIFEST_FORMAT;
  readonly version: typeof MANIFEST_VERSION;
  /** The highest default-domain opset of its models (23 where the Swin window attention is an Attention node). */
  readonly opset: number;
  /** Name of the scalar loss output of the training and eval models. */
  readonly loss: string;
  readonly extras: readonly string[];
  readonly parameters: readonly ParameterEntry[];
  readonly optimizer: ResolvedOptimizerConfig & { readonly slots: readonly string[] };
  readonly models: {
    readonly training: ModelEntry;
    readonly eval: ModelEntry;
    readonly optimizer: ModelEntry;
    /** Forward-only models by name (e.g. `encoder`), parameters as inputs. */
    readonly forward: Readonly<Record<string, ModelEntry>>;
  };
  /** When present, the runtime computes a step in pieces instead of with the training model. */
  readonly pieces?: PiecesEntry;
  /** When present, the training and eval models run on a few rows of a step at a time. */
  readonly accumulation?: AccumulationEntry;
}

/** An artifact folder without a readable manifest, or one written by an incompatible version. */
export class ManifestError extends UserError {
  constructor(readonly file: string, problem: string) {
    super(`${file}: ${problem}`);
  }
}

export function writeManifest(dir: string, manifest: ArtifactManifest): string {
  const file = path.join(dir, MANIFEST_FILE);
  writeFileAtomically(file, (fd) => writeAll(fd, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`)));
  return file;
}

export function readManifest(dir: string): ArtifactManifest {
  const file = path.join(dir, MANIFEST_FILE);
  if (!fs.existsSync(file)) throw new ManifestError(file, 'no artifact manifest here (write the artifacts first)');
  let parsed: Partial<ArtifactManifest>;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<ArtifactManifest>;
  } catch (error) {
    throw new ManifestError(file, `not valid JSON (${(error as Error).message})`);
  }
  if (parsed.format !== MANIFEST_FORMAT) throw new ManifestError(file, `not a ${MANIFEST_FORMAT} manifest`);
  if (parsed.version !== MANIFEST_VERSION) throw new ManifestError(file, `manifest version ${parsed.version} is not ${MANIFEST_VERSION}`);
  for (const key of ['training', 'eval', 'optimizer'] as const) {
    const model = parsed.models?.[key];
    if (!model || !fs.existsSync(path.join(dir, model.file))) throw new ManifestError(file, `the ${key} model is missing`);
  }
  for (const [key, model] of Object.entries(parsed.pieces?.models ?? {})) {
    if (!fs.existsSync(path.join(dir, model.file))) throw new ManifestError(file, `the ${key} piece model is missing`);
  }
  return parsed as ArtifactManifest;
}
