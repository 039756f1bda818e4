import { Node, Tensor } from '../core/graph';

export interface GradientContext {
  readonly node: Node;
  /** The node's inputs (`null` where an optional input was omitted). */
  readonly inputs: readonly (Tensor | null)[];
  readonly outputs: readonly Tensor[];
  /** Gradient of the loss with respect to the first output. */
  readonly grad: Tensor;
  /** Gradients with respect to every output; `null` for an output that does not reach the loss. */
  readonly grads: readonly (Tensor | null)[];
  /** Whether the gradient of each input is wanted; rules return `null` for the others. */
  readonly needs: readonly boolean[];
}

/** Builds, from the output gradients, one gradient per input (`null` where not needed or not defined). */
export type GradientRule = (ctx: GradientContext) => readonly (Tensor | null)[];

export type GradientTable = Readonly<Record<string, GradientRule>>;
