/**
 * Gradient processing between the training graph and the optimizer graph. Gradients arrive as the training
 * session's output arrays; changing them in place changes what the optimizer graph receives.
 */
export type GradientArray = Float32Array | Float64Array;
export type Gradients = ReadonlyMap<string, GradientArray>;

/** Returns 'skip' to drop this step (no optimizer update, step count unchanged). */
export type GradientHook = (gradients: Gradients) => 'skip' | void;

/** The L2 norm over all gradients together, accumulated in float64 (torch.nn.utils.clip_grad_norm_'s total_norm). */
export function globalGradNorm(gradients: Gradients): number {
  let sumSquares = 0;
  for (const g of gradients.values()) for (let i = 0; i < g.length; i++) sumSquares += g[i] * g[i];
  return Math.sqrt(sumSquares);
}

export function allFinite(gradients: Gradients): boolean {
  for (const g of gradients.values()) for (let i = 0; i < g.length; i++) if (!Number.isFinite(g[i])) return false;
  return true;
}

/**
 * Scales all gradients by max_norm / (norm + 1e-6) when that is below 1, as torch.nn.utils.clip_grad_norm_ does;
 * returns the norm before clipping.
 */
export function clipGradNorm(gradients: Gradients, maxNorm: number): number {
  const norm = globalGradNorm(gradients);
  const coefficient = maxNorm / (norm + 1e-6);
  if (coefficient < 1) for (const g of gradients.values()) for (let i = 0; i < g.length; i++) g[i] *= coefficient;
  return norm;
}

export interface GradientPolicy {
  /** Clip the global norm to this value (upstream's --grad-clip with --max-grad-norm). */
  readonly maxNorm?: number;
  /** Skip steps whose gradients hold NaN or infinity (default true). */
  readonly skipNonFinite?: boolean;
  /** Called with the norm before clipping, when clipping. */
  readonly onNorm?: (norm: number) => void;
}

/** A hook that skips non-finite steps and clips the global norm, in that order. */
export function gradientPolicy(policy: GradientPolicy): GradientHook {
  return (gradients) => {
    if ((policy.skipNonFinite ?? true) && !allFinite(gradients)) return 'skip';
    if (policy.maxNorm !== undefined) policy.onNorm?.(clipGradNorm(gradients, policy.maxNorm));
  };
}
