import type { DataCursor } from '../../data/loader/schedule';
import { LoopOptions, runTraining } from '../loop/loop';
import { RunState as LoopRunState } from '../loop/run-state';
import { TrainConfig } from './config';
import { VocoPretraining } from './task';

/** What a checkpoint of a pre-training run carries besides tensors. */
export type RunState = LoopRunState<TrainConfig, DataCursor>;
export type RunOptions = LoopOptions;

export interface RunSummary {
  readonly steps: number;
  readonly skippedSteps: number;
  readonly badFiles: number;
  readonly checkpoint: string;
  readonly encoder?: string;
  readonly weights?: string;
  readonly interrupted: boolean;
}

/**
 * VoCo pre-training (upstream's voco_train.py) through the training loop: see runtime/voco/task.ts for what a step
 * does and runtime/loop/loop.ts for checkpoints, resume, data-parallel ranks and what a run writes.
 */
export async function pretrain(config: TrainConfig, options: RunOptions = {}): Promise<RunSummary> {
  const { exports, ...summary } = await runTraining(new VocoPretraining(config), options);
  return { ...summary, encoder: exports.encoder, weights: exports.weights };
}
