/**
 * Self-contained copies of forward models: the parameters a forward model takes as inputs become initialisers
 * holding the trainer's current values, so the file runs in a plain ONNX Runtime session with batch inputs only.
 */
import * as fs from 'fs';
import * as path from 'path';
import { onnx } from 'onnx-proto';
import { ExternalDataOptions, writeModelFile } from '../../graph/onnx/external-data';
import { ModelEntry } from '../../graph/onnx/manifest';
import { tensorProto } from '../../graph/onnx/model';
import { inlineExternal } from '../../graph/onnx/initializers';
import { Trainer, UnknownModelError } from './trainer';

export interface ForwardExportOptions extends ExternalDataOptions {
  /** metadata_props of the file, added to (and replacing by key) the artifact's own. */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** Writes forward model `name` of the trainer's artifacts to `file` with the current parameters baked in. */
export function exportForwardModel(trainer: Trainer, name: string, file: string, options: ForwardExportOptions = {}): ModelEntry {
  const entry = trainer.manifest.models.forward[name];
  if (!entry) throw new UnknownModelError(trainer.dir, name, trainer.manifest);
  const source = path.join(trainer.dir, entry.file);
  const model = onnx.ModelProto.decode(fs.readFileSync(source));
  const graph = model.graph as onnx.GraphProto;
  const baked = entry.inputs.filter((io) => io.role === 'parameter' || io.role === 'state');
  const bakedNames = new Set(baked.map((io) => io.name));
  const initializers = graph.initializer.map((t) => inlineExternal(path.dirname(source), t));
  for (const io of baked) initializers.push(tensorProto(io.name, io.dtype, io.shape, trainer.parameters.get(io.name)));
  const { metadata = {}, ...external } = options;
  const kept = model.metadataProps.filter((p) => !(String(p.key) in metadata));
  const slim = onnx.ModelProto.create({
    ...model,
    metadataProps: [...kept, ...Object.entries(metadata).map(([key, value]) => ({ key, value }))],
    graph: { ...graph, input: graph.input.filter((i) => !bakedNames.has(i.name ?? '')), initializer: initializers },
  });
  const written = writeModelFile(file, slim, external);
  return {
    file: path.basename(file),
    ...(written.length > 1 ? { dataFile: path.basename(written[0]) } : {}),
    inputs: entry.inputs.filter((io) => !bakedNames.has(io.name)),
    outputs: entry.outputs,
  };
}
