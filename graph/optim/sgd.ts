/**
 * SGD as torch.optim.SGD computes it: d = g + weight_decay * param; with momentum, the buffer starts as d on the
 * first step and is `momentum * buf + (1 - dampening) * d` afterwards; Nesterov uses d + momentum * buf;
 * param -= lr * d.
 */
import { Tensor } from '../core/graph';
import { add, mul, sub } from '../ops/elementwise';
import { ResolvedOptimizerConfig } from './config';
import type { Update, UpdateContext } from './update';
import { minimum } from '../ops/math';
import { addScaled } from './scaled';

type SgdConfig = Extract<ResolvedOptimizerConfig, { kind: 'sgd' }>;

export function sgdSlots(config: SgdConfig): string[] {
  return config.momentum !== 0 ? ['momentum_buffer'] : [];
}

export function sgdUpdate(config: SgdConfig, ctx: UpdateContext): Update {
  const { momentum, dampening, nesterov } = config;
  let direction: Tensor = ctx.weightDecay !== 0 ? addScaled(ctx.grad, ctx.param, ctx.weightDecay) : ctx.grad;
  const state: Record<string, Tensor> = {};
  if (momentum !== 0) {
    // 0 on the first step, 1 afterwards (step is a whole number >= 1): selects buf = d on the first step.
    const later = minimum(sub(ctx.step, 1), 1);
    const running = addScaled(mul(ctx.state.momentum_buffer, momentum), direction, 1 - dampening);
    const buf = add(mul(later, running), mul(sub(1, later), direction));
    state.momentum_buffer = buf;
    direction = nesterov ? addScaled(direction, buf, momentum) : buf;
  }
  return { param: sub(ctx.param, mul(ctx.lr, direction)), state };
}
