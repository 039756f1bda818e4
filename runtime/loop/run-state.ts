/** The checkpoint of a training run: parameters, optimizer moments and where the run stands. */
import { UserError } from '../../common/user-error';
import * as path from 'node:path';
import { Checkpoint, OPTIMIZER_GROUP, checkpointDir, PARAMETERS_GROUP, latestCheckpoint, loadCheckpoint, saveCheckpoint, writeCheckpointFile } from '../../io/checkpoint';
import { NamedTensor, TensorMap } from '../../io/weights/tensor-map';
import { TensorStore } from '../session/tensor-store';
import { Trainer } from '../session/trainer';

/** A checkpoint that `--resume` cannot continue from. */
export class ResumeError extends UserError {}

/** The best evaluation so far by the metric the task's Evaluation names: what `best.ckpt` holds. */
export interface BestEvaluation {
  readonly key: string;
  readonly value: number;
  readonly step: number;
}

/** What a run's checkpoint carries besides tensors. */
export interface RunState<Config, Cursor> {
  readonly config: Config;
  /** Optimizer steps taken (skipped steps excluded): the bias-correction count. */
  readonly optimizerSteps: number;
  readonly cursor: Cursor;
  readonly skippedSteps: number;
  readonly best?: BestEvaluation;
}

export const BEST_CHECKPOINT_FILE = 'best.ckpt';

/** Where a resumed run continues: what every rank needs of the checkpoint besides its tensors. */
export interface ResumePoint<Cursor> {
  readonly step: number;
  readonly optimizerSteps: number;
  readonly cursor: Cursor;
  readonly skippedSteps: number;
  readonly best?: BestEvaluation;
}

export { checkpointDir };

/** The checkpoint `--resume` continues from: the file given, or the newest in the logdir when `true`. */
export function resumeCheckpoint<Config, Cursor>(logdir: string, resume: string | true): Checkpoint<RunState<Config, Cursor>> {
  const file = resume === true ? latestCheckpoint(checkpointDir(logdir)) : resume;
  if (!file) throw new ResumeError(`--resume: no checkpoint in ${checkpointDir(logdir)}`);
  return loadCheckpoint<RunState<Config, Cursor>>(file);
}

export function resumePoint<Cursor>(checkpoint: Checkpoint<RunState<unknown, Cursor>>): ResumePoint<Cursor> {
  const { optimizerSteps, cursor, skippedSteps, best } = checkpoint.meta;
  return { step: checkpoint.step, optimizerSteps, cursor, skippedSteps, ...(best ? { best } : {}) };
}

/** Sets the trainer's parameters and optimizer moments from `checkpoint`. */
export function restoreRun(trainer: Trainer, checkpoint: Checkpoint<unknown>): void {
  const restore = (group: string, store: TensorStore) => {
    const tensors = checkpoint.groups.get(group);
    if (!tensors) throw new ResumeError(`--resume: the checkpoint has no "${group}" group`);
    for (const name of store.names()) {
      const t = tensors.get(name);
      if (!t) throw new ResumeError(`--resume: the checkpoint lacks ${group} tensor ${name}`);
      store.set(name, t.data as Float32Array);
    }
  };
  restore(PARAMETERS_GROUP, trainer.parameters);
  restore(OPTIMIZER_GROUP, trainer.optimizerState);
}

/** Writes the checkpoint of `step` into `<logdir>/checkpoints`, keeping the newest `keep`; returns its file. */
export function saveRun<Config, Cursor>(trainer: Trainer, logdir: string, step: number, meta: RunState<Config, Cursor>, keep: number): string {
  return saveCheckpoint<RunState<Config, Cursor>>(checkpointDir(logdir), { step, groups: runTensors(trainer), meta }, keep);
}

/** Writes `<logdir>/best.ckpt` (atomically): the run as it stands, `meta.best` naming the evaluation it won. */
export function saveBest<Config, Cursor>(trainer: Trainer, logdir: string, step: number, meta: RunState<Config, Cursor>): string {
  const file = path.join(logdir, BEST_CHECKPOINT_FILE);
  writeCheckpointFile<RunState<Config, Cursor>>(file, { step, groups: runTensors(trainer), meta });
  return file;
}

function runTensors(trainer: Trainer): Map<string, TensorMap> {
  return new Map([
    [PARAMETERS_GROUP, storeTensors(trainer.parameters)],
    [OPTIMIZER_GROUP, storeTensors(trainer.optimizerState)],
  ]);
}

function storeTensors(store: TensorStore): TensorMap {
  const map: TensorMap = new Map();
  for (const [name, data] of store.snapshot()) {
    map.set(name, { name, dtype: 'float32', shape: store.decl(name).shape, data: data as Float32Array } satisfies NamedTensor);
  }
  return map;
}
