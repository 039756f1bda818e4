import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../common/user-error';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from './weights/safetensors';
import { NamedTensor, TensorMap } from './weights/tensor-map';

export const CHECKPOINT_FORMAT = 'voco-onnx.checkpoint/1';
const METADATA_KEY = 'voco.checkpoint';
const FILE_PATTERN = /^step-(\d+)\.ckpt$/;

/** The group of a checkpoint that holds the model's parameters and state, by name. */
export const PARAMETERS_GROUP = 'parameters';
/** The group that holds the optimizer's moments, by `<param>.<slot>`. */
export const OPTIMIZER_GROUP = 'optimizer';

export class CheckpointError extends UserError {}

/**
 * What a training checkpoint holds: tensors in named groups (parameters, state such as the teacher, optimizer
 * moments) and a JSON document with everything else needed to continue exactly (step, configuration, RNG
 * states, data cursor...). On disk it is a safetensors file whose tensor names are `<group>/<name>` and whose
 * metadata carries the JSON, so any safetensors reader can open it.
 */
export interface Checkpoint<Meta> {
  readonly step: number;
  readonly groups: ReadonlyMap<string, TensorMap>;
  readonly meta: Meta;
}

/** Where a training run keeps its checkpoints: `checkpoints/` in its logdir. */
export const checkpointDir = (logdir: string): string => path.join(logdir, 'checkpoints');

export function checkpointPath(dir: string, step: number): string {
  return path.join(dir, `step-${String(step).padStart(8, '0')}.ckpt`);
}

/** Writes `step-<n>.ckpt` atomically (temp file, fsync, rename), then keeps only the newest `keep` files. */
export function saveCheckpoint<Meta>(dir: string, checkpoint: Checkpoint<Meta>, keep: number): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = checkpointPath(dir, checkpoint.step);
  writeCheckpointFile(file, checkpoint);
  syncDirectory(dir);
  for (const old of listCheckpoints(dir).slice(0, -keep)) fs.rmSync(old.file, { force: true });
  return file;
}

/** Writes one checkpoint to `file` (atomically, as every safetensors file), whatever its name. */
export function writeCheckpointFile<Meta>(file: string, checkpoint: Checkpoint<Meta>): void {
  const tensors: NamedTensor[] = [];
  for (const [group, map] of checkpoint.groups) {
    for (const t of map.values()) tensors.push({ ...t, name: `${group}/${t.name}` });
  }
  const document = JSON.stringify({ format: CHECKPOINT_FORMAT, step: checkpoint.step, meta: checkpoint.meta });
  writeSafetensors(file, tensors, { [METADATA_KEY]: document });
}

export function loadCheckpoint<Meta>(file: string): Checkpoint<Meta> {
  const document = readDocument(file);
  const groups = new Map<string, TensorMap>();
  for (const [name, t] of readSafetensors(file)) {
    const slash = name.indexOf('/');
    const group = name.slice(0, slash);
    if (!groups.has(group)) groups.set(group, new Map());
    groups.get(group)!.set(name.slice(slash + 1), { ...t, name: name.slice(slash + 1) });
  }
  return { step: document.step, groups, meta: document.meta as Meta };
}

/** Checkpoint files of `dir`, oldest first (by step in the name). Temporary files of interrupted writes are ignored. */
export function listCheckpoints(dir: string): { step: number; file: string }[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .map((name) => ({ match: FILE_PATTERN.exec(name), name }))
    .filter((e) => e.match)
    .map((e) => ({ step: Number(e.match![1]), file: path.join(dir, e.name) }))
    .sort((a, b) => a.step - b.step);
}

/** The newest checkpoint of `dir` that reads back whole; undefined when there is none. */
export function latestCheckpoint(dir: string): string | undefined {
  for (const { file } of listCheckpoints(dir).reverse()) {
    try {
      readDocument(file);
      return file;
    } catch {
      // damaged (e.g. the disk filled up): fall back to the one before
    }
  }
  return undefined;
}

function readDocument(file: string): { step: number; meta: unknown } {
  let header;
  try {
    header = readSafetensorsHeader(file);
  } catch (error) {
    throw new CheckpointError(`${file}: not a readable checkpoint (${(error as Error).message})`);
  }
  const raw = header.metadata[METADATA_KEY];
  if (!raw) throw new CheckpointError(`${file}: not a voco-onnx checkpoint (no "${METADATA_KEY}" metadata)`);
  const document = JSON.parse(raw) as { format: string; step: number; meta: unknown };
  if (document.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(`${file}: checkpoint format ${document.format}, this version reads ${CHECKPOINT_FORMAT}`);
  }
  const size = fs.statSync(file).size;
  const end = Math.max(0, ...header.entries.map((e) => e.end));
  if (size < end) throw new CheckpointError(`${file}: truncated (${size} bytes, needs ${end})`);
  return document;
}

function syncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
