/**
 * Adam and AdamW as torch.optim.Adam/AdamW compute them (single-tensor path): Adam adds `weight_decay * param` to
 * the gradient before the moments; AdamW first scales the parameter by `1 - lr * weight_decay`. Then
 *   m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g;  [amsgrad: vmax = max(vmax, v), used for v]
 *   param -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 */
import { Tensor } from '../core/graph';
import { add, div, mul, sub } from '../ops/elementwise';
import { ResolvedOptimizerConfig } from './config';
import type { BiasCorrections, Update, UpdateContext } from './update';
import { maximum, sqrt } from '../ops/math';
import { addScaled } from './scaled';

type AdamConfig = Extract<ResolvedOptimizerConfig, { kind: 'adam' | 'adamw' }>;

export function adamSlots(config: AdamConfig): string[] {
  return config.amsgrad ? ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'] : ['exp_avg', 'exp_avg_sq'];
}

export function adamUpdate(config: AdamConfig, ctx: UpdateContext, bias: BiasCorrections): Update {
  const [beta1, beta2] = config.betas;
  const { lr, weightDecay } = ctx;
  let param: Tensor = ctx.param;
  let grad: Tensor = ctx.grad;
  if (weightDecay !== 0) {
    if (config.kind === 'adamw') param = mul(param, sub(1, mul(lr, weightDecay)));
    else grad = addScaled(grad, param, weightDecay);
  }
  const expAvg = addScaled(ctx.state.exp_avg, sub(grad, ctx.state.exp_avg), 1 - beta1);
  const expAvgSq = addScaled(mul(ctx.state.exp_avg_sq, beta2), mul(grad, grad), 1 - beta2);
  const second = config.amsgrad ? maximum(ctx.state.max_exp_avg_sq, expAvgSq) : expAvgSq;
  const denom = add(div(sqrt(second), sqrt(bias.second)), config.eps);
  const stepSize = div(lr, bias.first);
  const updated = sub(param, mul(stepSize, div(expAvg, denom)));
  const state: Record<string, Tensor> = { exp_avg: expAvg, exp_avg_sq: expAvgSq };
  if (config.amsgrad) state.max_exp_avg_sq = second;
  return { param: updated, state };
}
