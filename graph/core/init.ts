/**
 * How a parameter or state tensor gets its first value. Descriptors, not values, so that a graph can be built
 * without allocating weights and the manifest can say how each tensor was initialised.
 */
export type InitSpec =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'constant'; value: number }
  | { kind: 'normal'; std: number; mean?: number }
  /** Normal truncated to [mean + a, mean + b] by redrawing, as torch.nn.init.trunc_normal_. */
  | { kind: 'truncated-normal'; std: number; mean?: number; a: number; b: number }
  | { kind: 'uniform'; low: number; high: number }
  /** A fixed tensor computed at build time (e.g. a relative-position index). */
  | { kind: 'values'; values: Float32Array | Float64Array | BigInt64Array | Int32Array };
