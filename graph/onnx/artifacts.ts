/**
 * Training artifacts in ONNX Runtime's on-device-training layout, standard ops only: a training model (loss,
 * extras and one `<param>_grad` per trainable parameter), an eval model (loss and extras), an optimizer model,
 * optional forward-only models (e.g. the encoder), and the manifest describing them.
 */
import * as fs from 'fs';
import * as path from 'path';
import { onnx } from 'onnx-proto';
import { UserError } from '../../common/user-error';
import { ConstantData, Graph, ParameterInfo, Tensor } from '../core/graph';
import { formatShape } from '../core/shape';
import { gradients } from '../autodiff/backward';
import { OptimizerConfig } from '../optim/config';
import { buildOptimizer, gradientName, optimizerSlots } from '../optim/optimizer';
import { writeSafetensors } from '../../io/weights/safetensors';
import { namedTensor } from '../../io/weights/tensor-map';
import { ExternalDataOptions, writeModelFile } from './external-data';
import {
  ArtifactManifest,
  INITIAL_VALUES_FILE,
  InitEntry,
  IoEntry,
  IoRole,
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  ModelEntry,
  ParameterEntry,
  writeManifest,
} from './manifest';
import { buildModel, modelOpset } from './model';

export const TRAINING_MODEL = 'training_model.onnx';
export const EVAL_MODEL = 'eval_model.onnx';
export const OPTIMIZER_MODEL = 'optimizer_model.onnx';

/** A request for artifacts that cannot be built as asked (a non-scalar loss, clashing output names). */
export class ArtifactSpecError extends UserError {}

export interface ForwardSpec {
  /** Batch inputs in the order the model takes them; by default the graph inputs the outputs need. */
  readonly inputs?: readonly Tensor[];
  readonly outputs: Readonly<Record<string, Tensor>>;
  /**
   * The name of a symbolic leading axis of the batch inputs: the graph is built with one row there and the model
   * takes any number of rows (graph/onnx/symbolic-batch.ts). Fixed as built when omitted.
   */
  readonly batchDim?: string;
}

export interface ArtifactSpec {
  readonly graph: Graph;
  /** Scalar loss; output `loss` of the training and eval models. */
  readonly loss: Tensor;
  /** Extra named outputs of the training and eval models (e.g. the parts of the loss). */
  readonly extras?: Readonly<Record<string, Tensor>>;
  /** Parameters to train; by default every parameter created as trainable. The others are fed as state. */
  readonly trainable?: readonly Tensor[];
  readonly optimizer: OptimizerConfig;
  /** Forward-only models written as `<name>.onnx`, parameters as inputs. */
  readonly forward?: Readonly<Record<string, ForwardSpec>>;
  readonly externalData?: ExternalDataOptions;
}

export const LOSS_OUTPUT = 'loss';

export interface IoTensor {
  readonly name: string;
  readonly tensor: Tensor;
  readonly role: IoRole;
  readonly updates?: string;
}

/** Writes every artifact and the manifest into `dir` (created if needed); returns the manifest. */
export function writeArtifacts(dir: string, spec: ArtifactSpec): ArtifactManifest {
  const { graph, loss } = spec;
  if (loss.rank !== 0) throw new ArtifactSpecError(`the loss must be a scalar, got ${loss.name} of shape ${formatShape(loss.shape)}`);
  const trainable = new Set(spec.trainable ?? graph.parameters.filter((p) => p.trainable).map((p) => p.tensor));
  for (const t of trainable) {
    if (!graph.parameters.some((p) => p.tensor === t)) throw new ArtifactSpecError(`${t.name} is not a parameter of the graph, so it cannot be trained`);
  }
  const extras = Object.entries(spec.extras ?? {}).map(([name, tensor]): IoTensor => ({ name, tensor, role: 'output' }));
  for (const e of extras) if (e.name === LOSS_OUTPUT) throw new ArtifactSpecError(`extra output name "${LOSS_OUTPUT}" is reserved for the loss`);
  for (const name of Object.keys(spec.forward ?? {})) {
    if ([TRAINING_MODEL, EVAL_MODEL, OPTIMIZER_MODEL].includes(`${name}.onnx`)) throw new ArtifactSpecError(`forward model name "${name}" is taken by an artifact`);
  }
  fs.mkdirSync(dir, { recursive: true });
  // Until the new manifest is in place the folder reads as incomplete, never as the old artifacts.
  fs.rmSync(path.join(dir, MANIFEST_FILE), { force: true });

  const params = graph.parameters.filter((p) => trainable.has(p.tensor)).map((p) => p.tensor);
  const feeds: IoTensor[] = [
    ...params.map((t): IoTensor => ({ name: t.name, tensor: t, role: 'parameter' })),
    ...graph.parameters.filter((p) => !trainable.has(p.tensor)).map((p): IoTensor => ({ name: p.tensor.name, tensor: p.tensor, role: 'state' })),
    ...graph.inputs.map((t): IoTensor => ({ name: t.name, tensor: t, role: 'input' })),
  ];
  const outputs: IoTensor[] = [{ name: LOSS_OUTPUT, tensor: loss, role: 'output' }, ...extras];
  const grads = gradients(loss, params);
  const gradOutputs = params.map((t): IoTensor => ({ name: gradientName(t.name), tensor: grads.get(t)!, role: 'gradient' }));
  const ext = spec.externalData;

  const training = writeGraphModel(dir, TRAINING_MODEL, feeds, [...outputs, ...gradOutputs], { externalData: ext });
  const evaluation = writeGraphModel(dir, EVAL_MODEL, feeds, outputs, { externalData: ext });
  const opt = buildOptimizer(spec.optimizer, params);
  const optimizer = writeGraphModel(dir, OPTIMIZER_MODEL, opt.inputs, opt.outputs, { externalData: ext });
  const forward: Record<string, ModelEntry> = {};
  for (const [name, f] of Object.entries(spec.forward ?? {})) {
    const batch = (f.inputs ?? graph.inputs).map((t): IoTensor => ({ name: t.name, tensor: t, role: 'input' }));
    const inputs = [...feeds.filter((x) => x.role !== 'input'), ...batch];
    const outs = Object.entries(f.outputs).map(([n, tensor]): IoTensor => ({ name: n, tensor, role: 'output' }));
    forward[name] = writeGraphModel(dir, `${name}.onnx`, inputs, outs, { externalData: ext, batchDim: f.batchDim });
  }

  const manifest: ArtifactManifest = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    opset: modelOpset(graph.nodes),
    loss: LOSS_OUTPUT,
    extras: extras.map((e) => e.name),
    parameters: graph.parameters.map((p) => parameterEntry(p, trainable.has(p.tensor))),
    optimizer: { ...opt.config, slots: optimizerSlots(spec.optimizer) },
    models: { training, eval: evaluation, optimizer, forward },
  };
  writeInitialValues(dir, graph.parameters);
  writeManifest(dir, manifest);
  return manifest;
}

export interface ForwardModelSpec extends ForwardSpec {
  /** Parameter values to bake in as initialisers (by parameter name), making the model self-contained. */
  readonly weights?: ReadonlyMap<string, ConstantData>;
  readonly externalData?: ExternalDataOptions;
  /** The model's metadata_props. */
  readonly metadata?: Readonly<Record<string, string>>;
}

/**
 * Writes one forward-only model to `file`: the given outputs from the batch inputs, every parameter either baked
 * in (when `weights` has it) or left as an input.
 */
export function writeForwardModel(file: string, spec: ForwardModelSpec): ModelEntry {
  const outs = Object.entries(spec.outputs).map(([name, tensor]): IoTensor => ({ name, tensor, role: 'output' }));
  const graph = outs[0]?.tensor.graph;
  if (!graph) throw new ArtifactSpecError(`${file}: a forward model needs at least one output`);
  const values = spec.weights ?? new Map<string, ConstantData>();
  const weights = new Map<Tensor, ConstantData>();
  const inputs: IoTensor[] = [];
  for (const p of graph.parameters) {
    const v = values.get(p.tensor.name);
    if (v) weights.set(p.tensor, v);
    else inputs.push({ name: p.tensor.name, tensor: p.tensor, role: p.trainable ? 'parameter' : 'state' });
  }
  for (const t of spec.inputs ?? graph.inputs) inputs.push({ name: t.name, tensor: t, role: 'input' });
  const { externalData, metadata, batchDim } = spec;
  return writeGraphModel(path.dirname(file), path.basename(file), inputs, outs, { externalData, weights, metadata, batchDim });
}

export interface GraphModelOptions {
  readonly externalData?: ExternalDataOptions;
  /** Inputs baked in as initialisers. */
  readonly weights?: ReadonlyMap<Tensor, ConstantData>;
  readonly metadata?: Readonly<Record<string, string>>;
  /** A symbolic leading axis of the `input`-role tensors under this name (ForwardSpec.batchDim). */
  readonly batchDim?: string;
}

/** Writes one model over `inputs` (those no node reads are dropped) and `outputs`; returns its manifest entry. */
export function writeGraphModel(
  dir: string,
  file: string,
  inputs: readonly IoTensor[],
  outputs: readonly IoTensor[],
  { externalData, weights, metadata, batchDim }: GraphModelOptions = {},
): ModelEntry {
  const symbolicBatch = batchDim === undefined ? undefined : { inputs: inputs.filter((i) => i.role === 'input').map((i) => i.tensor), dim: batchDim };
  const model = buildModel({ name: path.basename(file, '.onnx'), inputs: inputs.map((i) => i.tensor), outputs, weights, metadata, symbolicBatch });
  const graph = model.graph!;
  const used = usedInputNames(graph);
  const kept = inputs.filter((i) => used.has(i.name) && !weights?.has(i.tensor));
  graph.input = (graph.input ?? []).filter((vi) => used.has(vi.name ?? ''));
  const written = writeModelFile(path.join(dir, file), model, externalData);
  const leading = symbolicLeadingDims([...graph.input, ...(graph.output ?? [])]);
  return {
    file,
    ...(written.length > 1 ? { dataFile: path.basename(written[0]) } : {}),
    inputs: kept.map((io) => ioEntry(io, leading.get(io.name))),
    outputs: outputs.map((io) => ioEntry(io, leading.get(io.name))),
  };
}

/** The dim_param of each value's leading dimension, where it has one. */
function symbolicLeadingDims(values: readonly onnx.IValueInfoProto[]): Map<string, string> {
  const dims = new Map<string, string>();
  for (const v of values) {
    const param = v.type?.tensorType?.shape?.dim?.[0]?.dimParam;
    if (param) dims.set(v.name ?? '', param);
  }
  return dims;
}

/** Inputs that some node reads or that pass straight to an output; the others are dropped from the model. */
function usedInputNames(graph: onnx.IGraphProto): Set<string> {
  const used = new Set<string>();
  for (const node of graph.node ?? []) for (const name of node.input ?? []) used.add(name);
  for (const out of graph.output ?? []) used.add(out.name ?? '');
  return used;
}

function ioEntry(io: IoTensor, batchDim?: string): IoEntry {
  return {
    name: io.name,
    dtype: io.tensor.dtype,
    shape: [...io.tensor.shape],
    role: io.role,
    ...(io.updates ? { updates: io.updates } : {}),
    ...(batchDim ? { batchDim } : {}),
  };
}

function parameterEntry(p: ParameterInfo, trainable: boolean): ParameterEntry {
  const init: InitEntry = p.init.kind === 'values' ? { kind: 'values', file: INITIAL_VALUES_FILE } : p.init;
  return { name: p.tensor.name, dtype: p.tensor.dtype, shape: [...p.tensor.shape], trainable, init };
}

function writeInitialValues(dir: string, parameters: readonly ParameterInfo[]): void {
  const fixed = parameters.flatMap((p) =>
    p.init.kind === 'values' ? [namedTensor(p.tensor.name, p.tensor.dtype, p.tensor.shape, p.init.values)] : [],
  );
  if (fixed.length) writeSafetensors(path.join(dir, INITIAL_VALUES_FILE), fixed);
}
