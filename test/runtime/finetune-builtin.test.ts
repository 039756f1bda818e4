import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PHANTOM_RUN } from '../../cli/finetune';
import { listCheckpoints, loadCheckpoint } from '../../io/checkpoint';
import type { FinetuneConfig } from '../../runtime/finetune/config';
import type { RunState } from '../../runtime/loop/run-state';
import { finish, spawnVoco } from '../helpers/cli';

// `voco finetune` with no --data: the built-in run's settings (PHANTOM_RUN) apply where no option names them, and
// its labelled phantoms are contrast-enhanced. One step on three phantoms keeps it cheap.
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-finetune-builtin-'));
const cacheDir = path.join(work, 'cache');
const BASE = ['finetune', '--phantom-count', '3', '--phantom-validation', '1', '--max-steps', '1', '--val-every', '1', '--threads', '1', '--cache-dir', cacheDir, '--init-from', 'none'];
const config = (logdir: string) => loadCheckpoint<RunState<FinetuneConfig, unknown>>(listCheckpoints(path.join(logdir, 'checkpoints')).pop()!.file).meta.config;

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test('the built-in run trains at its own spacing, class-balanced crops and learning rate; options given win', async () => {
  const builtIn = path.join(work, 'built-in');
  const done = await finish(spawnVoco([...BASE, '--logdir', builtIn]));
  expect(done.code).toBe(0);
  expect(done.stderr).toMatch(/built-in labelled contrast-enhanced phantom CTs/);
  expect(config(builtIn)).toMatchObject({ spacing: PHANTOM_RUN.spacing, cropSampler: 'classes', lr: PHANTOM_RUN.lr });
  const dataset = fs.readdirSync(cacheDir).find((d) => d.startsWith('labelled-phantoms-'))!;
  expect(JSON.parse(fs.readFileSync(path.join(cacheDir, dataset, 'dataset.json'), 'utf8')).phantom.options).toEqual({ contrast: true });

  const given = path.join(work, 'given');
  const again = await finish(spawnVoco([...BASE, '--logdir', given, '--spacing', '5', '5', '5', '--crop-sampler', 'pos-neg', '--lr', '0.002']));
  expect(again.code).toBe(0);
  expect(config(given)).toMatchObject({ spacing: [5, 5, 5], cropSampler: 'pos-neg', lr: 0.002 });
}, 600_000);
