/**
 * Runs training artifacts: holds parameters, state and optimizer moments, and performs a step as the training
 * session (or its pieces, or its runs on parts of the rows), an optional gradient hook, then the optimizer
 * session. Values move between sessions as ort.Tensor objects: on the CPU provider outputs are handed over without
 * copying and fed back without copying.
 */
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { Rng } from '../../common/rng';
import { UserError } from '../../common/user-error';
import { ConstantData } from '../../graph/core/graph';
import { formatShape, size } from '../../graph/core/shape';
import { materialize } from '../../graph/nn/init';
import { ArtifactManifest, IoEntry, ModelEntry, ParameterEntry, readManifest } from '../../graph/onnx/manifest';
import { LEARNING_RATE, STEP, gradientName, stateName } from '../../graph/optim/optimizer';
import { readSafetensors } from '../../io/weights/safetensors';
import { GradientArray, GradientHook } from './gradient-hooks';
import { ProviderOptions, createSession } from './providers';
import { PiecewiseStep } from './piecewise';
import { runAccumulated } from './accumulation';
import { TensorStore, TensorValueError, toOrtTensor } from './tensor-store';

export type BatchValue = ort.Tensor | ConstantData;
/** BatchFeeds inputs by name: typed arrays (shaped by the manifest) or ort.Tensors. */
export type BatchFeeds = Readonly<Record<string, BatchValue>>;

export interface LoadOptions extends ProviderOptions {
  /** Seed of the generator that draws the initial parameter values (in manifest order). */
  readonly seed?: number;
  /**
   * Compute steps with the manifest's piece models when it has them (default true): the same numbers as the
   * training model with memory for a few rows of activations; false runs the training model.
   */
  readonly piecewise?: boolean;
}

export interface StepOptions {
  readonly lr: number;
  readonly gradientHook?: GradientHook;
}

export interface Evaluation {
  readonly loss: number;
  /** Extra outputs by name, as CPU tensors. */
  readonly extras: Readonly<Record<string, ort.Tensor>>;
}

export interface StepResult extends Evaluation {
  /** True when the gradient hook refused the step: nothing was updated. */
  readonly skipped: boolean;
  /** The step count after this call. */
  readonly step: number;
}

export interface GradientResult extends Evaluation {
  readonly gradients: ReadonlyMap<string, GradientArray>;
}

/** A batch that lacks an input the model needs or gives one of the wrong type or shape. */
export class BatchError extends UserError {}

/** A forward model asked for by a name the artifacts do not have. */
export class UnknownModelError extends UserError {
  constructor(dir: string, name: string, manifest: ArtifactManifest) {
    super(`no forward model "${name}" in ${dir} (has: ${Object.keys(manifest.models.forward).join(', ') || 'none'})`);
  }
}

export class Trainer {
  private readonly forwardSessions = new Map<string, Promise<ort.InferenceSession>>();
  private evalSession: Promise<ort.InferenceSession> | undefined;
  private steps = 0;

  private constructor(
    readonly dir: string,
    readonly manifest: ArtifactManifest,
    private readonly options: LoadOptions,
    /** Trainable parameters and non-trained state, by name. */
    readonly parameters: TensorStore,
    /** Optimizer moments by `<param>.<slot>`, zeros at first. */
    readonly optimizerState: TensorStore,
    /** The training model's session, or the step in pieces. */
    private readonly training: ort.InferenceSession | PiecewiseStep,
    private readonly optimizer: ort.InferenceSession,
  ) {}

  /** Loads the artifacts in `dir`, draws initial values from the manifest's InitSpecs and opens the sessions. */
  static async load(dir: string, options: LoadOptions = {}): Promise<Trainer> {
    const manifest = readManifest(dir);
    const parameters = initialParameters(dir, manifest, new Rng(options.seed ?? 0));
    const optimizerState = new TensorStore('optimizer state');
    for (const p of manifest.parameters.filter((q) => q.trainable)) {
      for (const slot of manifest.optimizer.slots) {
        const decl = { name: stateName(p.name, slot), dtype: p.dtype, shape: p.shape };
        optimizerState.declare(decl, zeros(p));
      }
    }
    const pieces = options.piecewise !== false ? manifest.pieces : undefined;
    const [training, optimizer] = await Promise.all([
      pieces ? PiecewiseStep.open(dir, pieces, options) : createSession(path.join(dir, manifest.models.training.file), options),
      createSession(path.join(dir, manifest.models.optimizer.file), options),
    ]);
    return new Trainer(dir, manifest, options, parameters, optimizerState, training, optimizer);
  }

  /** Completed optimizer steps; the next step uses bias corrections for `stepCount + 1`. */
  get stepCount(): number {
    return this.steps;
  }

  set stepCount(n: number) {
    if (!Number.isInteger(n) || n < 0) throw new TensorValueError(`step count ${n} is not a whole number >= 0`);
    this.steps = n;
  }

  /** Training graph (or its pieces), gradient hook, optimizer graph. */
  async step(batch: BatchFeeds, options: StepOptions): Promise<StepResult> {
    const { loss, extras, gradients, raw } = await this.runTraining(batch);
    if (options.gradientHook?.(gradients) === 'skip') return { loss, extras, skipped: true, step: this.steps };
    const dtype = this.manifest.models.optimizer.inputs.find((i) => i.name === LEARNING_RATE)!.dtype;
    const scalars: Record<string, ort.Tensor> = {
      [LEARNING_RATE]: scalarTensor(dtype, options.lr),
      [STEP]: scalarTensor(dtype, this.steps + 1),
    };
    const feeds = this.feeds(this.manifest.models.optimizer, (io) => scalars[io.name] ?? raw[io.name]);
    const out = await this.optimizer.run(feeds);
    for (const o of this.manifest.models.optimizer.outputs) {
      const store = o.role === 'parameter' ? this.parameters : this.optimizerState;
      store.adopt(o.updates!, out[o.name]);
    }
    this.steps++;
    return { loss, extras, skipped: false, step: this.steps };
  }

  /** The training graph (or its pieces) alone: loss, extras and the gradient of every trainable parameter. */
  async computeGradients(batch: BatchFeeds): Promise<GradientResult> {
    const { loss, extras, gradients } = await this.runTraining(batch);
    return { loss, extras, gradients };
  }

  /** The eval graph: loss and extras without gradients (one forward over all rows, also when steps run in pieces). */
  async evaluate(batch: BatchFeeds): Promise<Evaluation> {
    this.evalSession ??= createSession(path.join(this.dir, this.manifest.models.eval.file), this.options);
    const out = await this.runModel(await this.evalSession, this.manifest.models.eval, batch);
    return this.lossAndExtras(out);
  }

  /** Runs the forward-only model `name` (e.g. `encoder`) with the current parameters. */
  async forward(name: string, batch: BatchFeeds): Promise<Record<string, ort.Tensor>> {
    const model = this.manifest.models.forward[name];
    if (!model) throw new UnknownModelError(this.dir, name, this.manifest);
    let session = this.forwardSessions.get(name);
    if (!session) {
      session = createSession(path.join(this.dir, model.file), this.options);
      this.forwardSessions.set(name, session);
    }
    return (await session).run(this.feeds(model, (io) => this.batchTensor(batch, io)));
  }

  async release(): Promise<void> {
    const sessions = [this.training, this.optimizer];
    if (this.evalSession) sessions.push(await this.evalSession);
    for (const s of this.forwardSessions.values()) sessions.push(await s);
    await Promise.all(sessions.map((s) => s.release()));
  }

  private async runTraining(batch: BatchFeeds): Promise<GradientResult & { raw: ort.InferenceSession.OnnxValueMapType }> {
    const model = this.manifest.models.training;
    let raw: ort.InferenceSession.OnnxValueMapType;
    if (this.training instanceof PiecewiseStep) {
      const inputs = new Map(model.inputs.map((io) => [io.name, io]));
      const input = (name: string) => this.batchTensor(batch, inputs.get(name)!);
      raw = await this.training.run((m, other) => this.feeds(m, other), input, this.manifest.extras);
    } else {
      raw = await this.runModel(this.training, model, batch);
    }
    const gradients = new Map<string, GradientArray>();
    for (const p of this.manifest.parameters) if (p.trainable) gradients.set(p.name, raw[gradientName(p.name)].data as GradientArray);
    return { ...this.lossAndExtras(raw), gradients, raw };
  }

  /** One run of `model` on the batch, or one per part of its rows under gradient accumulation. */
  private runModel(session: ort.InferenceSession, model: ModelEntry, batch: BatchFeeds): Promise<ort.InferenceSession.OnnxValueMapType> {
    const acc = this.manifest.accumulation;
    if (!acc) return session.run(this.feeds(model, (io) => this.batchTensor(batch, io)));
    const allRows = (io: IoEntry): IoEntry => ({ ...io, shape: [acc.rows, ...io.shape.slice(1)] });
    return runAccumulated(acc, model.outputs, (part) => session.run(this.feeds(model, (io) => part(this.batchTensor(batch, allRows(io))))));
  }

  /** Feeds for `model`: parameters and state from the stores, everything else from `other`. */
  private feeds(model: ModelEntry, other: (io: IoEntry) => ort.Tensor): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const io of model.inputs) {
      if (io.role === 'parameter' || io.role === 'state') feeds[io.name] = this.parameters.tensor(io.name);
      else if (io.role === 'optimizer-state') feeds[io.name] = this.optimizerState.tensor(io.name);
      else feeds[io.name] = other(io);
    }
    return feeds;
  }

  private batchTensor(batch: BatchFeeds, io: IoEntry): ort.Tensor {
    const value = batch[io.name];
    const row = io.shape.slice(1);
    const takes = io.batchDim === undefined ? `${io.dtype}${formatShape(io.shape)}` : `${io.dtype}[${[io.batchDim, ...row].join(', ')}]`;
    if (value === undefined) throw new BatchError(`batch lacks input ${io.name} (${takes})`);
    // A symbolic leading axis takes any number of whole rows.
    if (ArrayBuffer.isView(value)) {
      if (io.batchDim === undefined) return toOrtTensor(io, value, 'batch input');
      const rows = value.length / size(row);
      if (!Number.isInteger(rows) || rows < 1) throw new BatchError(`batch input ${io.name}: ${value.length} values are not whole rows of ${takes}`);
      return toOrtTensor({ ...io, shape: [rows, ...row] }, value, 'batch input');
    }
    const fits = value.dims.length === io.shape.length && value.dims.every((d, i) => d === io.shape[i] || (i === 0 && io.batchDim !== undefined));
    if (value.type !== io.dtype || !fits) throw new BatchError(`batch input ${io.name}: got ${value.type}[${value.dims.join(', ')}], the model takes ${takes}`);
    return value;
  }

  private lossAndExtras(out: ort.InferenceSession.OnnxValueMapType): Evaluation {
    const extras: Record<string, ort.Tensor> = {};
    for (const name of this.manifest.extras) extras[name] = out[name];
    return { loss: Number(out[this.manifest.loss].data[0]), extras };
  }
}

/** Opens the artifacts in `dir` for training (see Trainer.load). */
export function loadArtifacts(dir: string, options: LoadOptions = {}): Promise<Trainer> {
  return Trainer.load(dir, options);
}

/** Parameters and state drawn from their InitSpecs in manifest order (build-time `values` read from their file). */
function initialParameters(dir: string, manifest: ArtifactManifest, rng: Rng): TensorStore {
  const store = new TensorStore('parameter');
  const fixed = manifest.parameters.filter((p) => p.init.kind === 'values');
  const files = new Set(fixed.map((p) => (p.init as { file: string }).file));
  const values = new Map<string, ConstantData>();
  for (const file of files) {
    for (const t of readSafetensors(path.join(dir, file), fixed.map((p) => p.name)).values()) values.set(t.name, t.data as ConstantData);
  }
  for (const p of manifest.parameters) {
    const data = p.init.kind === 'values' ? values.get(p.name) : materialize(p.init, p.shape, p.dtype, rng);
    if (!data) throw new TensorValueError(`${path.join(dir, (p.init as { file: string }).file)} lacks the initial value of ${p.name}`);
    store.declare(p, data);
  }
  return store;
}

function zeros(p: ParameterEntry): ConstantData {
  return p.dtype === 'float64' ? new Float64Array(size(p.shape)) : new Float32Array(size(p.shape));
}

function scalarTensor(dtype: string, value: number): ort.Tensor {
  return dtype === 'float64' ? new ort.Tensor('float64', Float64Array.of(value), []) : new ort.Tensor('float32', Float32Array.of(value), []);
}
