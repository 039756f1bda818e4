import { UserError } from '../../common/user-error';

/** Options of torch.optim.AdamW / torch.optim.Adam, PyTorch's defaults where omitted. */
export interface AdamOptions {
  readonly betas?: readonly [number, number];
  readonly eps?: number;
  readonly weightDecay?: number;
  readonly amsgrad?: boolean;
  /** Parameter-name patterns (`*` matches any run of characters) that get no weight decay; upstream decays all. */
  readonly noDecay?: readonly string[];
}

/** Options of torch.optim.SGD, PyTorch's defaults where omitted. */
export interface SgdOptions {
  readonly momentum?: number;
  readonly dampening?: number;
  readonly nesterov?: boolean;
  readonly weightDecay?: number;
  readonly noDecay?: readonly string[];
}

/** Which update the optimizer graph computes; plain JSON so the manifest can record it. */
export type OptimizerConfig =
  | ({ readonly kind: 'adamw' } & AdamOptions)
  | ({ readonly kind: 'adam' } & AdamOptions)
  | ({ readonly kind: 'sgd' } & SgdOptions);

export type ResolvedOptimizerConfig =
  | { kind: 'adamw' | 'adam'; betas: [number, number]; eps: number; weightDecay: number; amsgrad: boolean; noDecay: string[] }
  | { kind: 'sgd'; momentum: number; dampening: number; nesterov: boolean; weightDecay: number; noDecay: string[] };

/** An optimizer setting PyTorch would refuse (negative rates, betas outside [0, 1), Nesterov without momentum). */
export class OptimizerConfigError extends UserError {}

/** Fills in PyTorch's defaults and refuses what torch.optim would refuse. */
export function resolveOptimizerConfig(config: OptimizerConfig): ResolvedOptimizerConfig {
  const noDecay = [...(config.noDecay ?? [])];
  const check = (ok: boolean, what: string): void => {
    if (!ok) throw new OptimizerConfigError(`optimizer ${config.kind}: invalid ${what}`);
  };
  if (config.kind === 'sgd') {
    const r = {
      kind: 'sgd' as const,
      momentum: config.momentum ?? 0,
      dampening: config.dampening ?? 0,
      nesterov: config.nesterov ?? false,
      weightDecay: config.weightDecay ?? 0,
      noDecay,
    };
    check(r.momentum >= 0, `momentum ${r.momentum}`);
    check(r.weightDecay >= 0, `weight decay ${r.weightDecay}`);
    check(!r.nesterov || (r.momentum > 0 && r.dampening === 0), 'Nesterov momentum (it needs momentum > 0 and dampening 0)');
    return r;
  }
  const betas: [number, number] = [config.betas?.[0] ?? 0.9, config.betas?.[1] ?? 0.999];
  const r = {
    kind: config.kind,
    betas,
    eps: config.eps ?? 1e-8,
    weightDecay: config.weightDecay ?? (config.kind === 'adamw' ? 1e-2 : 0),
    amsgrad: config.amsgrad ?? false,
    noDecay,
  };
  betas.forEach((b, i) => check(b >= 0 && b < 1, `beta parameter at index ${i}: ${b}`));
  check(r.eps >= 0, `epsilon ${r.eps}`);
  check(r.weightDecay >= 0, `weight decay ${r.weightDecay}`);
  return r;
}

/** Whether weight decay applies to the parameter `name` under the `noDecay` patterns. */
export function decays(name: string, noDecay: readonly string[]): boolean {
  return !noDecay.some((pattern) => globToRegExp(pattern).test(name));
}

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`);
}
