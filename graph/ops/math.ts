import { isFloat } from '../core/dtype';
import { Attribute, Tensor, attr } from '../core/graph';
import { ShapeError, broadcastShapes } from '../core/shape';
import { GradientRule, GradientTable } from '../autodiff/rule';
import { div, mul, neg, sub } from './elementwise';
import { equal, greater, less, noGradient, where } from './compare';
import { Operand, asTensor, asTensors } from './operand';
import { reduceSum, unbroadcast } from './reduce';

/** Throws a ShapeError naming `op` unless every tensor is floating point. */
export function requireFloat(op: string, ...xs: readonly Tensor[]): void {
  for (const x of xs) if (!isFloat(x.dtype)) throw new ShapeError(`${op}: expected a floating-point tensor, got ${x}`);
}

function unary(opType: string, x: Tensor, attributes: Record<string, Attribute> = {}): Tensor {
  requireFloat(opType, x);
  return x.graph.addNode(opType, [x], attributes, [{ dtype: x.dtype, shape: x.shape }])[0];
}

function binary(opType: string, a: Operand, b: Operand): Tensor {
  const [x, y] = asTensors(a, b);
  requireFloat(opType, x, y);
  if (x.dtype !== y.dtype) throw new ShapeError(`${opType}: dtypes differ in ${x} and ${y}`);
  const shape = broadcastShapes(opType, [x.shape, y.shape]);
  return x.graph.addNode(opType, [x, y], {}, [{ dtype: x.dtype, shape }])[0];
}

/** x ** p elementwise; `p` may be a number (a scalar constant) or a tensor broadcasting with `x`. */
export const pow = (x: Tensor, p: Operand): Tensor => binary('Pow', x, p);
export const sqrt = (x: Tensor): Tensor => unary('Sqrt', x);
export const exp = (x: Tensor): Tensor => unary('Exp', x);
export const log = (x: Tensor): Tensor => unary('Log', x);
export const abs = (x: Tensor): Tensor => unary('Abs', x);
/** -1, 0 or 1 by the sign of each element. */
export const sign = (x: Tensor): Tensor => unary('Sign', x);
/** The Gauss error function (ONNX Runtime's CPU provider runs it in float32 only). */
export const erf = (x: Tensor): Tensor => unary('Erf', x);
export const relu = (x: Tensor): Tensor => unary('Relu', x);
export const leakyRelu = (x: Tensor, alpha = 0.01): Tensor => unary('LeakyRelu', x, { alpha: attr.float(alpha) });
export const sigmoid = (x: Tensor): Tensor => unary('Sigmoid', x);
export const tanh = (x: Tensor): Tensor => unary('Tanh', x);
export const reciprocal = (x: Tensor): Tensor => unary('Reciprocal', x);
/** Elementwise larger of two operands (broadcasting). */
export const maximum = (a: Operand, b: Operand): Tensor => binary('Max', a, b);
/** Elementwise smaller of two operands (broadcasting). */
export const minimum = (a: Operand, b: Operand): Tensor => binary('Min', a, b);

/** Clamps `x` to [min, max]; either bound may be omitted; bounds are numbers or scalar tensors of x's dtype. */
export function clip(x: Tensor, min?: Operand, max?: Operand): Tensor {
  requireFloat('Clip', x);
  if (typeof min === 'number' && typeof max === 'number' && min > max) {
    throw new ShapeError(`Clip: min ${min} is above max ${max} for ${x}`);
  }
  const bound = (b: Operand | undefined): Tensor | null => {
    if (b === undefined) return null;
    const t = asTensor(b, x);
    if (t.rank !== 0 || t.dtype !== x.dtype) throw new ShapeError(`Clip: bounds must be ${x.dtype} scalars, got ${t}`);
    return t;
  };
  const lo = bound(min);
  const hi = bound(max);
  const inputs = hi ? [x, lo, hi] : lo ? [x, lo] : [x];
  return x.graph.addNode('Clip', inputs, {}, [{ dtype: x.dtype, shape: x.shape }])[0];
}

function sumAll(x: Tensor): Tensor {
  return x.rank === 0 ? x : reduceSum(x, x.shape.map((_, i) => i));
}

/** The value of a rank-0 constant, or null when `t` is not one. */
function constantScalar(t: Tensor): number | null {
  const data = t.graph.constants.get(t);
  return data && t.rank === 0 ? Number(data[0]) : null;
}

/** d(x ** p)/dx; a constant exponent is folded at build time. */
function powSlope(x: Tensor, p: Tensor): Tensor {
  const c = constantScalar(p);
  return c === null ? mul(pow(x, sub(p, 1)), p) : mul(pow(x, c - 1), c);
}

/**
 * Max/Min of two operands: the gradient goes to the operand that wins; on a tie it is split equally between
 * both (as PyTorch's maximum/minimum, and what central differences measure at a tie).
 */
function extremumRule(wins: (a: Tensor, b: Tensor) => Tensor): GradientRule {
  return ({ inputs: [a, b], grad, needs }) => {
    const tie = where(equal(a!, b!), mul(grad, 0.5), 0);
    return [
      needs[0] ? unbroadcast(where(wins(a!, b!), grad, tie), a!.shape) : null,
      needs[1] ? unbroadcast(where(wins(b!, a!), grad, tie), b!.shape) : null,
    ];
  };
}

export const mathGradients: GradientTable = {
  Pow: ({ inputs: [x, p], outputs: [y], grad, needs }) => [
    needs[0] ? unbroadcast(mul(grad, powSlope(x!, p!)), x!.shape) : null,
    needs[1] ? unbroadcast(mul(grad, mul(y, log(x!))), p!.shape) : null,
  ],
  Sqrt: ({ outputs: [y], grad }) => [div(mul(grad, 0.5), y)],
  Exp: ({ outputs: [y], grad }) => [mul(grad, y)],
  Log: ({ inputs: [x], grad }) => [div(grad, x!)],
  // At 0 the gradient is 0 (Sign(0) = 0), as in PyTorch.
  Abs: ({ inputs: [x], grad }) => [mul(grad, sign(x!))],
  Sign: noGradient,
  Erf: ({ inputs: [x], grad }) => [mul(grad, mul(exp(neg(mul(x!, x!))), 2 / Math.sqrt(Math.PI)))],
  // At 0 Relu passes no gradient and LeakyRelu passes alpha, as in PyTorch; alpha is stored as a float32 attribute.
  Relu: ({ inputs: [x], grad }) => [where(greater(x!, 0), grad, 0)],
  // grad times a Where of two scalars: ONNX Runtime's CPU Where over full-size branches runs slower than that Mul
  // (24 against 35 ms at [2, 12, 64^3]), with the same products.
  LeakyRelu: ({ node, inputs: [x], grad }) => {
    const alpha = Math.fround(node.attributes.alpha.value as number);
    return [mul(grad, where(greater(x!, 0), grad.graph.scalar(1, grad.dtype), grad.graph.scalar(alpha, grad.dtype)))];
  },
  Sigmoid: ({ outputs: [y], grad }) => [mul(grad, mul(y, sub(1, y)))],
  Tanh: ({ outputs: [y], grad }) => [mul(grad, sub(1, mul(y, y)))],
  Reciprocal: ({ outputs: [y], grad }) => [neg(mul(grad, mul(y, y)))],
  Max: extremumRule(greater),
  Min: extremumRule(less),
  // x passes the gradient inside the closed interval [min, max] (as PyTorch's clamp); a tensor bound collects
  // the gradient of the elements it clipped.
  Clip: ({ inputs: [x, lo, hi], grad, needs }) => {
    const below = lo ? less(x!, lo) : null;
    const above = hi ? greater(x!, hi) : null;
    const passed = (): Tensor => [below, above].reduce<Tensor>((g, mask) => (mask ? where(mask, 0, g) : g), grad);
    return [
      needs[0] ? passed() : null,
      needs[1] && below ? sumAll(where(below, grad, 0)) : null,
      needs[2] && above ? sumAll(where(above, grad, 0)) : null,
    ];
  },
};
