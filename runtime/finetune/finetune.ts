import type { DataCursor } from '../../data/loader/schedule';
import { LoopOptions, LoopSummary, runTraining } from '../loop/loop';
import type { RunState } from '../loop/run-state';
import { FinetuneConfig } from './config';
import { SegmentationFinetuning } from './task';

/** What a checkpoint of a fine-tuning run carries besides tensors. */
export type FinetuneRunState = RunState<FinetuneConfig, DataCursor>;

/**
 * SwinUNETR fine-tuning (upstream's Downstream/monai/BTCV main.py) through the training loop: see
 * runtime/finetune/task.ts for what a step and a validation do, runtime/loop/loop.ts for the rest.
 */
export function finetune(config: FinetuneConfig, options: LoopOptions = {}): Promise<LoopSummary> {
  const task = new SegmentationFinetuning(config);
  if ((options.comm?.rank ?? 0) === 0 && !options.resume) (options.log ?? ((line: string) => process.stderr.write(line + '\n')))(task.startLine());
  return runTraining(task, options);
}
