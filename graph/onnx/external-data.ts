/**
 * ONNX external data: a protobuf message cannot exceed 2 GiB, so a larger model keeps its initialisers' bytes in a
 * `<model>.onnx.data` file beside it; each such TensorProto records `location` (relative to the model's folder),
 * `offset` and `length`. Offsets are aligned to 4 KiB so the data can be memory-mapped.
 */
import * as fs from 'fs';
import * as path from 'path';
import { onnx } from 'onnx-proto';
import { writeAll, writeFileAtomically } from '../../common/atomic-file';
import { encodeModel } from './model';

/** Models whose initialisers total more than this are written with external data (headroom below 2 GiB). */
export const DEFAULT_EXTERNAL_DATA_THRESHOLD = 2 ** 31 - 64 * 2 ** 20;
/** Initialisers smaller than this stay inside the model even when the rest goes out (ONNX's own default). */
export const MIN_EXTERNAL_TENSOR_BYTES = 1024;
export const EXTERNAL_DATA_ALIGNMENT = 4096;

export interface ExternalDataOptions {
  /** Total initialiser bytes above which data goes to the external file. */
  readonly threshold?: number;
}

interface Placement {
  readonly bytes: Uint8Array;
  readonly offset: number;
}

/**
 * Writes `model` to `file` (and, when large, its data to `file + '.data'`), each atomically, the data first so
 * that a model file never points at missing data. Returns the paths written.
 */
export function writeModelFile(file: string, model: onnx.IModelProto, options: ExternalDataOptions = {}): string[] {
  const initializers = model.graph?.initializer ?? [];
  const total = initializers.reduce((n, t) => n + (t.rawData?.length ?? 0), 0);
  if (total <= (options.threshold ?? DEFAULT_EXTERNAL_DATA_THRESHOLD)) {
    writeFileAtomically(file, (fd) => writeAll(fd, encodeModel(onnx.ModelProto.create(model))));
    return [file];
  }
  const dataFile = `${file}.data`;
  const location = path.basename(dataFile);
  const placements: Placement[] = [];
  let end = 0;
  const moved = initializers.map((t) => {
    const bytes = t.rawData;
    if (!bytes || bytes.length < MIN_EXTERNAL_TENSOR_BYTES) return t;
    const offset = Math.ceil(end / EXTERNAL_DATA_ALIGNMENT) * EXTERNAL_DATA_ALIGNMENT;
    placements.push({ bytes, offset });
    end = offset + bytes.length;
    return {
      ...t,
      rawData: undefined,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(bytes.length) },
      ],
    };
  });
  writeFileAtomically(dataFile, (fd) => {
    for (const p of placements) writeAt(fd, p.bytes, p.offset);
  });
  const slim = onnx.ModelProto.create({ ...model, graph: { ...model.graph, initializer: moved } });
  writeFileAtomically(file, (fd) => writeAll(fd, encodeModel(slim)));
  return [dataFile, file];
}

/** Writes `bytes` at `position` in pieces (one write call takes at most 2 GiB). */
function writeAt(fd: number, bytes: Uint8Array, position: number): void {
  for (let done = 0; done < bytes.length; ) {
    done += fs.writeSync(fd, bytes, done, Math.min(2 ** 30, bytes.length - done), position + done);
  }
}
