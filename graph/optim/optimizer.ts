import { DType } from '../core/dtype';
import { Graph, Tensor } from '../core/graph';
import { Shape } from '../core/shape';
import { sub } from '../ops/elementwise';
import { OptimizerConfig, OptimizerConfigError, ResolvedOptimizerConfig, decays, resolveOptimizerConfig } from './config';
import { adamSlots, adamUpdate } from './adam';
import { sgdSlots, sgdUpdate } from './sgd';
import { BiasCorrections, UpdateContext } from './update';

export type { BiasCorrections, Update, UpdateContext } from './update';
import { pow } from '../ops/math';

export const LEARNING_RATE = 'learning_rate';
/** The 1-based number of the update being computed (PyTorch increments `step` before using it). */
export const STEP = 'step';

export const gradientName = (parameter: string): string => `${parameter}_grad`;
export const stateName = (parameter: string, slot: string): string => `${parameter}.${slot}`;
export const updatedName = (name: string): string => `${name}.new`;

export interface OptimizedParameter {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: Shape;
}

export type OptimizerRole = 'hyperparameter' | 'parameter' | 'gradient' | 'optimizer-state';

export interface OptimizerIo {
  readonly name: string;
  readonly tensor: Tensor;
  readonly role: OptimizerRole;
  /** For an output: the input it replaces after the step. */
  readonly updates?: string;
}

export interface OptimizerGraph {
  readonly graph: Graph;
  readonly config: ResolvedOptimizerConfig;
  readonly inputs: readonly OptimizerIo[];
  readonly outputs: readonly OptimizerIo[];
}

/** The names of the optimizer-state slots each parameter carries (`exp_avg`, `momentum_buffer`, ...). */
export function optimizerSlots(config: OptimizerConfig): string[] {
  const r = resolveOptimizerConfig(config);
  return r.kind === 'sgd' ? sgdSlots(r) : adamSlots(r);
}

/**
 * The optimizer as a graph: inputs `learning_rate` and `step` (scalars of the parameters' dtype), then per
 * parameter `<p>`, `<p>_grad` and its state `<p>.<slot>`; outputs `<p>.new` and `<p>.<slot>.new`.
 */
export function buildOptimizer(config: OptimizerConfig, parameters: readonly OptimizedParameter[]): OptimizerGraph {
  const resolved = resolveOptimizerConfig(config);
  if (parameters.length === 0) throw new OptimizerConfigError('optimizer: there are no trainable parameters');
  const dtype = parameters[0].dtype;
  const odd = parameters.find((p) => p.dtype !== dtype || (dtype !== 'float32' && dtype !== 'float64'));
  if (odd) throw new OptimizerConfigError(`optimizer: parameter ${odd.name} is ${odd.dtype}; all must share one float dtype (${dtype})`);

  const g = new Graph();
  const lr = g.input(LEARNING_RATE, dtype, []);
  const step = g.input(STEP, dtype, []);
  const inputs: OptimizerIo[] = [
    { name: LEARNING_RATE, tensor: lr, role: 'hyperparameter' },
    { name: STEP, tensor: step, role: 'hyperparameter' },
  ];
  const outputs: OptimizerIo[] = [];
  const slots = resolved.kind === 'sgd' ? sgdSlots(resolved) : adamSlots(resolved);
  const shared = resolved.kind === 'sgd' ? undefined : biasCorrections(resolved.betas, step);

  for (const p of parameters) {
    const param = g.input(p.name, dtype, p.shape);
    const grad = g.input(gradientName(p.name), dtype, p.shape);
    const state: Record<string, Tensor> = {};
    for (const slot of slots) state[slot] = g.input(stateName(p.name, slot), dtype, p.shape);
    inputs.push({ name: p.name, tensor: param, role: 'parameter' }, { name: grad.name, tensor: grad, role: 'gradient' });
    for (const slot of slots) inputs.push({ name: state[slot].name, tensor: state[slot], role: 'optimizer-state' });

    const ctx: UpdateContext = { param, grad, state, lr, step, weightDecay: decays(p.name, resolved.noDecay) ? resolved.weightDecay : 0 };
    const update = g.scope(p.name, () => (resolved.kind === 'sgd' ? sgdUpdate(resolved, ctx) : adamUpdate(resolved, ctx, shared!)));
    outputs.push({ name: updatedName(p.name), tensor: update.param, role: 'parameter', updates: p.name });
    for (const slot of slots) {
      const name = stateName(p.name, slot);
      outputs.push({ name: updatedName(name), tensor: update.state[slot], role: 'optimizer-state', updates: name });
    }
  }
  return { graph: g, config: resolved, inputs, outputs };
}

function biasCorrections(betas: readonly [number, number], step: Tensor): BiasCorrections {
  return step.graph.scope('bias_correction', () => {
    const [b1, b2] = betas.map((b) => step.graph.scalar(b, step.dtype));
    return { first: sub(1, pow(b1, step)), second: sub(1, pow(b2, step)) };
  });
}
