/** What an optimizer's per-parameter update (adam.ts, sgd.ts) receives and returns. */
import { Tensor } from '../core/graph';

/** What one parameter's update sees: its value, gradient and state slots, and the shared scalars. */
export interface UpdateContext {
  readonly param: Tensor;
  readonly grad: Tensor;
  readonly state: Readonly<Record<string, Tensor>>;
  readonly lr: Tensor;
  readonly step: Tensor;
  /** The weight decay for this parameter (0 where `noDecay` excludes it). */
  readonly weightDecay: number;
}

export interface Update {
  readonly param: Tensor;
  readonly state: Readonly<Record<string, Tensor>>;
}

/** 1 - beta^step for both betas, computed once for all parameters. */
export interface BiasCorrections {
  readonly first: Tensor;
  readonly second: Tensor;
}
