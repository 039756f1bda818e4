import { sharedRunArgs } from '../../cli/training-options';
import { runVoco } from '../helpers/cli';

// Every option each command listed before the shared ones moved into cli/training-options.ts.
const TRAIN_OPTIONS = [
  'batch-size', 'cache-dir', 'checkpoint-every', 'config', 'crops-per-run', 'data', 'device-id', 'digest-every', 'distributed', 'drop-path-rate',
  'ep', 'feature-dropout', 'feature-size', 'grad-clip', 'held-out-batches', 'held-out-every', 'help', 'init-from', 'keep-checkpoints', 'logdir', 'lr',
  'lr-schedule', 'max-bad-steps', 'max-grad-norm', 'max-steps', 'momentum', 'on-bad-file', 'optimizer', 'phantom-count', 'preset', 'resume', 'roi',
  'seed', 'sw-batch-size', 'threads', 'version', 'warmup-steps', 'weight-decay', 'workers',
];
const FINETUNE_OPTIONS = [
  'batch-size', 'cache-dir', 'checkpoint-every', 'class-ratios', 'config', 'crop-sampler', 'crops', 'crops-per-run', 'data', 'device-id', 'digest-every', 'distributed', 'ep', 'feature-size',
  'freeze-encoder', 'grad-clip', 'help', 'init-from', 'keep-checkpoints', 'logdir', 'lr', 'lr-schedule', 'max-bad-steps', 'max-grad-norm', 'max-steps',
  'on-bad-file', 'out-channels', 'overlap', 'phantom-count', 'phantom-organs', 'phantom-validation', 'preset', 'resume', 'roi', 'seed', 'spacing', 'sw-batch-size',
  'threads', 'val-cases', 'val-every', 'version', 'warmup-steps', 'weight-decay', 'workers',
];

/** The options a help text lists, and the text of each (its lines up to the next option). */
function helpOptions(text: string): Map<string, string> {
  const options = new Map<string, string>();
  let current: string | undefined;
  for (const line of text.split('\n')) {
    const match = /^ {2}--([a-z-]+)/.exec(line);
    if (match) options.set((current = match[1]), line);
    else if (current !== undefined && /^ +\S/.test(line)) options.set(current, `${options.get(current)} ${line.trim()}`);
    else current = undefined;
  }
  return options;
}

describe('the options voco train and voco finetune share', () => {
  const help = Object.fromEntries(['train', 'finetune'].map((command) => [command, runVoco([command, '--help'])]));

  test('--help of each command lists every one of its options, each with its own defaults and wording', () => {
    for (const [command, expected] of [['train', TRAIN_OPTIONS], ['finetune', FINETUNE_OPTIONS]] as const) {
      expect(help[command].status).toBe(0);
      expect([...helpOptions(help[command].stdout).keys()].sort()).toEqual([...expected].sort());
    }
    const train = helpOptions(help.train.stdout);
    const finetune = helpOptions(help.finetune.stdout);
    expect(train.get('lr')).toMatch(/\[default: 0\.0001\]/);
    expect(finetune.get('lr')).toMatch(/peak learning rate of AdamW .*\[default: 0\.01 on the built-in phantoms, else 0\.001\]/);
    expect(train.get('roi')).toMatch(/\(upstream 64\)/);
    expect(finetune.get('roi')).toMatch(/validation windows, .*\(upstream 96\)/);
    expect(finetune.get('init-from')).toMatch(/\[default: runs\/voco when it holds weights/);
    expect(train.get('logdir')).toMatch(/\[default: runs\/voco\]/);
    expect(finetune.get('logdir')).toMatch(/\[default: runs\/finetune\]/);
    // train's own option joins the shared Device group.
    expect(help.train.stdout).toMatch(/Device:\n(?: {2}--(?:ep|device-id|threads)[^\n]*\n(?: {3,}[^\n]*\n)*){3} {2}--crops-per-run/);
  });

  test('finetune --crops-per-run must divide the crops of a step, and is listed with the Device options', () => {
    const run = runVoco(['finetune', '--batch-size', '1', '--crops', '4', '--crops-per-run', '3', '--logdir', '/nonexistent/never-written']);
    expect(run.status).toBe(2);
    expect(run.stderr.trim()).toBe('voco: --crops-per-run must be 0 or a whole number that divides the 4 crops of a step (--batch-size x --crops), got 3');
    expect(help.finetune.stdout).toMatch(/Device:\n(?: {2}--(?:ep|device-id|threads)[^\n]*\n(?: {3,}[^\n]*\n)*){3} {2}--crops-per-run/);
  });

  test('a shared option reaches each command\'s config checks', () => {
    for (const command of ['train', 'finetune']) {
      const run = runVoco([command, '--max-steps', '0', '--logdir', '/nonexistent/never-written']);
      expect(run.status).toBe(2);
      expect(run.stderr.trim()).toBe('voco: --max-steps must be a whole number >= 1, got 0');
    }
  });

  test('sharedRunArgs: the config fields given, --preset as the feature size unless --feature-size is given, --resume', () => {
    const fields = { lr: 'lr', 'feature-size': 'featureSize' } as const;
    type Config = { lr: number; featureSize: number };
    expect(sharedRunArgs<Config>({ lr: 0.5, preset: 'B', resume: true, distributed: true, 'digest-every': 3 }, fields)).toEqual({
      explicit: { lr: 0.5, featureSize: 48 },
      resume: true,
      distributed: true,
      digestEvery: 3,
    });
    expect(sharedRunArgs<Config>({ preset: 'B', 'feature-size': 24, resume: 'x.ckpt' }, fields)).toMatchObject({ explicit: { featureSize: 24 }, resume: 'x.ckpt' });
    expect(sharedRunArgs<Config>({}, fields)).toEqual({ explicit: {}, resume: undefined, distributed: undefined, digestEvery: undefined });
  });
});
