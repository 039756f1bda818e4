import { spawnSync } from 'child_process';
import { Rng } from '../../common/rng';
import { Tensor } from '../../graph/core/graph';
import { OptimizerConfig, OptimizerConfigError, resolveOptimizerConfig } from '../../graph/optim/config';
import { buildOptimizer, gradientName, stateName, updatedName } from '../../graph/optim/optimizer';
import { cpuSession, runSession } from '../helpers/ort';

type Vec = Float64Array;
type State = Record<string, Vec>;

/** torch.optim.Adam / AdamW (single-tensor path) for one parameter, in float64, written from PyTorch's docs. */
function adamReference(c: Extract<ReturnType<typeof resolveOptimizerConfig>, { kind: 'adam' | 'adamw' }>, decay: number) {
  return (p: Vec, g: Vec, s: State, lr: number, t: number): { p: Vec; s: State } => {
    const [b1, b2] = c.betas;
    const out = { p: new Float64Array(p.length), s: {} as State };
    for (const k of Object.keys(s)) out.s[k] = new Float64Array(p.length);
    for (let i = 0; i < p.length; i++) {
      let param = p[i];
      let grad = g[i];
      if (c.kind === 'adamw') param *= 1 - lr * decay;
      else grad += decay * param;
      const m = s.exp_avg[i] + (1 - b1) * (grad - s.exp_avg[i]);
      const v = b2 * s.exp_avg_sq[i] + (1 - b2) * grad * grad;
      const vHat = c.amsgrad ? Math.max(s.max_exp_avg_sq[i], v) : v;
      const denom = Math.sqrt(vHat) / Math.sqrt(1 - b2 ** t) + c.eps;
      out.p[i] = param - (lr / (1 - b1 ** t)) * (m / denom);
      out.s.exp_avg[i] = m;
      out.s.exp_avg_sq[i] = v;
      if (c.amsgrad) out.s.max_exp_avg_sq[i] = vHat;
    }
    return out;
  };
}

/** torch.optim.SGD for one parameter, in float64. */
function sgdReference(c: Extract<ReturnType<typeof resolveOptimizerConfig>, { kind: 'sgd' }>, decay: number) {
  return (p: Vec, g: Vec, s: State, lr: number, t: number): { p: Vec; s: State } => {
    const out = { p: new Float64Array(p.length), s: {} as State };
    if (c.momentum !== 0) out.s.momentum_buffer = new Float64Array(p.length);
    for (let i = 0; i < p.length; i++) {
      let d = g[i] + decay * p[i];
      if (c.momentum !== 0) {
        const buf = t === 1 ? d : c.momentum * s.momentum_buffer[i] + (1 - c.dampening) * d;
        out.s.momentum_buffer[i] = buf;
        d = c.nesterov ? d + c.momentum * buf : buf;
      }
      out.p[i] = p[i] - lr * d;
    }
    return out;
  };
}

const PARAMS = [
  { name: 'layer.weight', dtype: 'float32' as const, shape: [3, 4] },
  { name: 'layer.bias', dtype: 'float32' as const, shape: [4] },
];

async function compareWithReference(config: OptimizerConfig, decayedNames: readonly string[]): Promise<number> {
  const resolved = resolveOptimizerConfig(config);
  const opt = buildOptimizer(config, PARAMS);
  const session = await cpuSession({ name: 'optimizer', inputs: opt.inputs.map((i) => i.tensor), outputs: opt.outputs });
  const rng = new Rng(7);
  const randoms = (n: number) => Float64Array.from({ length: n }, () => rng.normal());
  const slots = opt.inputs.filter((i) => i.role === 'optimizer-state' && i.name.startsWith('layer.bias.')).map((i) => i.name.slice('layer.bias.'.length));
  const model = PARAMS.map((p) => {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const decay = decayedNames.includes(p.name) ? resolved.weightDecay : 0;
    const update = resolved.kind === 'sgd' ? sgdReference(resolved, decay) : adamReference(resolved, decay);
    const state: State = Object.fromEntries(slots.map((s) => [s, new Float64Array(n)]));
    const value: Vec = randoms(n);
    return { ...p, n, update, value, state };
  });
  let worst = 0;
  for (let t = 1; t <= 6; t++) {
    const lr = 0.01 * (1 + 0.3 * t);
    const grads = model.map((m) => randoms(m.n).map((x) => x * (t === 4 ? 1e-3 : 1)));
    const byName = new Map<string, Float64Array>([
      ['learning_rate', Float64Array.of(lr)],
      ['step', Float64Array.of(t)],
    ]);
    model.forEach((m, k) => {
      byName.set(m.name, m.value).set(gradientName(m.name), grads[k]);
      for (const s of slots) byName.set(stateName(m.name, s), m.state[s]);
    });
    const feeds = new Map<Tensor, Float32Array>(opt.inputs.map((i) => [i.tensor, Float32Array.from(byName.get(i.name)!)]));
    const out = await runSession(session, feeds);
    model.forEach((m, k) => {
      // Reference from the float32-rounded inputs the graph saw.
      const f32 = (v: Vec) => Float64Array.from(Float32Array.from(v));
      const ref = m.update(f32(m.value), f32(grads[k]), Object.fromEntries(slots.map((s) => [s, f32(m.state[s])])), Math.fround(lr), t);
      const check = (got: Float32Array, want: Vec) =>
        want.forEach((w, i) => (worst = Math.max(worst, Math.abs(got[i] - w) / (Math.abs(w) + 1e-6))));
      check(out[updatedName(m.name)] as Float32Array, ref.p);
      for (const s of slots) check(out[updatedName(stateName(m.name, s))] as Float32Array, ref.s[s]);
      m.value = ref.p;
      m.state = ref.s;
    });
  }
  await session.release();
  return worst;
}

describe('optimizer graphs follow torch.optim over several steps (float32)', () => {
  const both = PARAMS.map((p) => p.name);
  test.each<[string, OptimizerConfig, string[]]>([
    ['AdamW (defaults)', { kind: 'adamw' }, both],
    ['AdamW amsgrad, no decay on biases', { kind: 'adamw', amsgrad: true, weightDecay: 0.05, betas: [0.8, 0.99], noDecay: ['*.bias'] }, ['layer.weight']],
    ['Adam with L2 weight decay', { kind: 'adam', weightDecay: 0.1 }, both],
    ['Adam amsgrad', { kind: 'adam', amsgrad: true, eps: 1e-6 }, both],
    ['SGD with momentum and dampening', { kind: 'sgd', momentum: 0.9, dampening: 0.1, weightDecay: 0.01 }, both],
    ['SGD Nesterov', { kind: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 0.01, noDecay: ['layer.weight'] }, ['layer.bias']],
    ['plain SGD', { kind: 'sgd' }, both],
  ])('%s', async (_label, config, decayed) => {
    // float32 graph vs float64 reference from the same float32 inputs: a few ulps per op.
    const worst = await compareWithReference(config, decayed);
    expect(worst).toBeLessThan(2e-5);
  });

  test('graph inputs and outputs are named after the parameters', () => {
    const opt = buildOptimizer({ kind: 'adamw', amsgrad: true }, PARAMS);
    expect(opt.inputs.map((i) => `${i.role}:${i.name}`).slice(0, 7)).toEqual([
      'hyperparameter:learning_rate',
      'hyperparameter:step',
      'parameter:layer.weight',
      'gradient:layer.weight_grad',
      'optimizer-state:layer.weight.exp_avg',
      'optimizer-state:layer.weight.exp_avg_sq',
      'optimizer-state:layer.weight.max_exp_avg_sq',
    ]);
    expect(opt.outputs.slice(0, 2).map((o) => [o.name, o.updates])).toEqual([
      ['layer.weight.new', 'layer.weight'],
      ['layer.weight.exp_avg.new', 'layer.weight.exp_avg'],
    ]);
  });

  test('settings torch.optim refuses are refused', () => {
    expect(() => resolveOptimizerConfig({ kind: 'sgd', nesterov: true })).toThrow(OptimizerConfigError);
    expect(() => resolveOptimizerConfig({ kind: 'adamw', betas: [1, 0.9] })).toThrow(/beta parameter at index 0/);
    expect(() => buildOptimizer({ kind: 'adam' }, [])).toThrow(/no trainable parameters/);
  });
});

/** Debian's python3-torch (optional): the same updates computed by torch.optim itself. */
const pythonWithTorch = ['python3', '/usr/bin/python3'].find((p) => spawnSync(p, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0);

const TORCH_SCRIPT = `
import json, sys, torch
torch.manual_seed(0)
make = {
  'adamw': lambda p: torch.optim.AdamW(p, lr=1, weight_decay=0.05, amsgrad=True, betas=(0.8, 0.99)),
  'adam': lambda p: torch.optim.Adam(p, lr=1, weight_decay=0.1),
  'sgd': lambda p: torch.optim.SGD(p, lr=1, momentum=0.9, dampening=0.1, weight_decay=0.01),
}[sys.argv[1]]
w = torch.randn(3, 4)
start = w.flatten().tolist()
w.requires_grad_()
opt = make([w])
steps = []
for t in range(1, 7):
    lr = 0.01 * (1 + 0.3 * t)
    for g in opt.param_groups: g['lr'] = lr
    w.grad = torch.randn(3, 4)
    steps.append({'lr': lr, 'grad': w.grad.flatten().tolist()})
    opt.step()
state = {k: v.flatten().tolist() for k, v in opt.state[w].items() if k != 'step'}
print(json.dumps({'start': start, 'steps': steps, 'end': w.detach().flatten().tolist(), 'state': state}))
`;

(pythonWithTorch ? describe : describe.skip)('optimizer graphs against torch.optim itself (python3-torch, optional)', () => {
  test.each<[string, OptimizerConfig]>([
    ['adamw', { kind: 'adamw', weightDecay: 0.05, amsgrad: true, betas: [0.8, 0.99] }],
    ['adam', { kind: 'adam', weightDecay: 0.1 }],
    ['sgd', { kind: 'sgd', momentum: 0.9, dampening: 0.1, weightDecay: 0.01 }],
  ])('%s', async (name, config) => {
    const run = spawnSync(pythonWithTorch!, ['-c', TORCH_SCRIPT, name], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    const torchRun = JSON.parse(run.stdout) as { start: number[]; steps: { lr: number; grad: number[] }[]; end: number[]; state: Record<string, number[]> };
    const opt = buildOptimizer(config, [{ name: 'w', dtype: 'float32', shape: [3, 4] }]);
    const session = await cpuSession({ name: 'optimizer', inputs: opt.inputs.map((i) => i.tensor), outputs: opt.outputs });
    const values = new Map<string, Float32Array>([['w', Float32Array.from(torchRun.start)]]);
    for (const i of opt.inputs) if (i.role === 'optimizer-state') values.set(i.name, new Float32Array(12));
    for (const [k, step] of torchRun.steps.entries()) {
      values.set('w_grad', Float32Array.from(step.grad)).set('learning_rate', Float32Array.of(step.lr)).set('step', Float32Array.of(k + 1));
      const out = await runSession(session, new Map(opt.inputs.map((i) => [i.tensor, values.get(i.name)!])));
      for (const o of opt.outputs) values.set(o.updates!, out[o.name] as Float32Array);
    }
    const worst = (got: Float32Array, want: number[]) => Math.max(...want.map((v, i) => Math.abs(got[i] - v) / (Math.abs(v) + 1e-6)));
    expect(worst(values.get('w')!, torchRun.end)).toBeLessThan(2e-5);
    for (const [slot, want] of Object.entries(torchRun.state)) expect(worst(values.get(stateName('w', slot))!, want)).toBeLessThan(2e-5);
    expect(Object.keys(torchRun.state).length).toBeGreaterThan(0);
    await session.release();
  });
});
