/**
 * The value of pre-training, measured (docs/downstream.md): the tiny preset pre-trained by the default `voco train`
 * run (or a finished logdir, --pretrained), then `voco finetune` with the built-in run's settings
 * (DEFAULT_FINETUNE_CONFIG with the built-in run's PHANTOM_RUN settings) on the first 2, 4 and 8 of one set of labelled phantoms, all scored
 * on the same validation volumes, from the VoCo weights and from scratch, with the same seeds and steps. One more
 * run starts from the pre-training exported as upstream's `.pt` (`voco export`): it must load the same tensors and
 * log the same numbers as the run from the logdir. Writes the table and the Dice curves into docs/downstream.md
 * (between its markers) and docs/downstream.svg. Every run is a real `voco` process; a rerun with the same options
 * reuses the finished runs of --work and resumes an interrupted one. Over an hour and a half on 2 CPU cores (see
 * docs/downstream.md), so it runs only by name.
 * Run: npm run bench -- downstream [--pretrained runs/voco] [--sizes 2,4,8] [--seeds 0] [--steps N] ...  (--help)
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { writeBytesAtomically } from '../common/atomic-file';
import { UserError } from '../common/user-error';
import { checkpointDir, listCheckpoints, loadCheckpointMeta } from '../io/checkpoint';
import { resolveSwinUnetrOptions } from '../graph/models/swinunetr/options';
import { resolveWeightSource } from '../graph/models/swinunetr/weights';
import { PT_EXPORT_FILE, SAFETENSORS_EXPORT_FILE } from '../graph/models/voco/weight-files';
import type { FinetuneConfig } from '../runtime/finetune/config';
import { classNamesOf } from '../runtime/finetune/data';
import { SEGMENTER_FILE } from '../runtime/finetune/task';
import { MEAN_DICE_KEY } from '../runtime/finetune/validation';
import type { RunState } from '../runtime/loop/run-state';
import { MetricsLog, seriesOf } from '../runtime/observe/metrics-log';
import { HELD_OUT_KEY } from '../runtime/voco/task';
import { DEFAULT_FINETUNE_CONFIG, phantomRunArgs } from '../cli/finetune';
import { DEFAULT_TRAIN_CONFIG } from '../cli/train';
import { writeSizeDatalists } from './downstream/dataset';
import { ArmRun, dicePlot, Init, replaceSection, resultsSection, resultsTable, verdict } from './downstream/report';
import { BenchRuns, commandLine, PlannedRun, runVoco } from './downstream/runs';
import { compareImports, compareMetrics } from './downstream/same-run';

interface Options {
  readonly pretrained?: string;
  readonly pretrainSteps: number;
  readonly sizes: number[];
  readonly seeds: number[];
  readonly steps: number;
  readonly valEvery: number;
  readonly validation: number;
  readonly work: string;
  readonly cacheDir: string;
  readonly doc: string;
  readonly plot: string;
}

const ft = DEFAULT_FINETUNE_CONFIG;

function wholeNumbers(option: string, text: string, least: number): number[] {
  const values = text.split(',').map((s) => (s.trim() ? Number(s) : NaN));
  if (values.some((v) => !Number.isInteger(v) || v < least)) throw new UserError(`--${option} must be a comma-separated list of whole numbers >= ${least}, got ${text}`);
  if (new Set(values).size !== values.length) throw new UserError(`--${option} lists a value twice: ${text}`);
  return values;
}

function parseOptions(argv: string[]): Options {
  const args = yargs(argv)
    .scriptName('npm run bench -- downstream')
    .strict()
    .version(false)
    .help()
    .fail((message, error) => {
      throw error ?? new UserError(message);
    })
    .option('pretrained', { type: 'string', describe: 'a finished `voco train` logdir to fine-tune from (e.g. runs/voco); default: run the default pre-training into --work' })
    .option('pretrain-steps', { type: 'number', describe: "steps of the pre-training this benchmark runs (not with --pretrained)", defaultDescription: `voco train's ${DEFAULT_TRAIN_CONFIG.maxSteps}` })
    .option('sizes', { type: 'string', default: '2,4,8', describe: 'training-set sizes: fine-tune on the first N training volumes' })
    .option('seeds', { type: 'string', default: '0', describe: 'fine-tuning seeds (fresh decoder, data order, crops), the same for both initialisations' })
    .option('steps', { type: 'number', default: ft.maxSteps, describe: 'fine-tuning steps of every run (voco finetune --max-steps)' })
    .option('val-every', { type: 'number', default: ft.valEvery, describe: 'validation every N steps (voco finetune --val-every)' })
    .option('validation', { type: 'number', default: 2, describe: 'validation volumes, the same for every run' })
    .option('work', { type: 'string', default: 'runs/downstream', describe: 'the pre-training, phantoms, .pt and fine-tuning logdirs' })
    .option('cache-dir', { type: 'string', default: DEFAULT_TRAIN_CONFIG.cacheDir, describe: 'preprocessed-volume cache of every run (and the pre-training phantoms)' })
    .option('doc', { type: 'string', default: 'docs/downstream.md', describe: 'the document whose results section is written' })
    .option('plot', { type: 'string', default: 'docs/downstream.svg', describe: 'the Dice curves (SVG)' })
    .parseSync();
  if (args.pretrained !== undefined && args['pretrain-steps'] !== undefined) {
    throw new UserError('--pretrain-steps is for the pre-training this benchmark runs; --pretrained names a finished one');
  }
  const least = (option: string, value: number, min: number) => {
    if (!Number.isInteger(value) || value < min) throw new UserError(`--${option} must be a whole number >= ${min}, got ${value}`);
    return value;
  };
  return {
    pretrained: args.pretrained,
    pretrainSteps: least('pretrain-steps', args['pretrain-steps'] ?? DEFAULT_TRAIN_CONFIG.maxSteps, 1),
    sizes: wholeNumbers('sizes', args.sizes, 1),
    seeds: wholeNumbers('seeds', args.seeds, 0),
    steps: least('steps', args.steps, 1),
    valEvery: least('val-every', args['val-every'], 1),
    validation: least('validation', args.validation, 1),
    work: args.work,
    cacheDir: args['cache-dir'],
    doc: args.doc,
    plot: args.plot,
  };
}

/** A pre-training logdir given with --pretrained must hold a completed run (its exports). */
function checkFinished(logdir: string): void {
  if (!fs.existsSync(logdir)) throw new UserError(`--pretrained ${logdir}: no such folder`);
  if (!fs.existsSync(path.join(logdir, SAFETENSORS_EXPORT_FILE))) {
    throw new UserError(`--pretrained ${logdir}: not a finished pre-training run (no ${SAFETENSORS_EXPORT_FILE}; finish it with npm run train -- --resume --logdir ${logdir})`);
  }
}

/** Tells a rewritten weight file from the one an earlier run started from. */
function fileIdentity(file: string): object {
  const { size, mtimeMs } = fs.statSync(file);
  return { file: path.resolve(file), size, mtimeMs };
}

interface Arm {
  readonly size: number;
  readonly init: Init;
  readonly seed: number;
  /** The `--init-from` of the run; `none` from scratch. */
  readonly initFrom: string;
  readonly run: PlannedRun;
}

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${cpu}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`;
}
const load = () => os.loadavg().map((l) => l.toFixed(1)).join(', ');

/** What the runs were given beyond the command line: the saved config of a fine-tuning run, paths and seed left out. */
function effectiveSettings(config: FinetuneConfig): string {
  const own = new Set(['logdir', 'data', 'cacheDir', 'initFrom', 'seed', 'phantomCount', 'phantomValidation', 'phantomOrgans']);
  return Object.entries(config)
    .filter(([k]) => !own.has(k))
    .map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(' ') : v}`)
    .join(', ');
}

async function main(): Promise<number> {
  const o = parseOptions(hideBin(process.argv));
  const docText = () => {
    if (!fs.existsSync(o.doc)) throw new UserError(`--doc ${o.doc}: no such file`);
    return fs.readFileSync(o.doc, 'utf8');
  };
  replaceSection(o.doc, docText(), ''); // before an hour of runs: is there a place for the results?
  const started = Date.now();
  const startLoad = load();
  const log = (line: string) => process.stderr.write(`downstream: ${line}\n`);
  const finetuneDir = path.join(o.work, 'finetune');
  const pretrainLogdir = o.pretrained ?? path.join(o.work, 'pretrain');
  if (o.pretrained !== undefined) checkFinished(o.pretrained);
  const pretraining: PlannedRun | undefined = o.pretrained
    ? undefined
    : {
        kind: 'pre-training',
        label: `(voco train defaults${o.pretrainSteps === DEFAULT_TRAIN_CONFIG.maxSteps ? '' : `, ${o.pretrainSteps} steps`})`,
        args: ['train', '--cache-dir', o.cacheDir, ...(o.pretrainSteps === DEFAULT_TRAIN_CONFIG.maxSteps ? [] : ['--max-steps', String(o.pretrainSteps)])],
        logdir: pretrainLogdir,
        finishedFile: SAFETENSORS_EXPORT_FILE,
        steps: o.pretrainSteps,
        identity: () => DEFAULT_TRAIN_CONFIG,
      };
  const ptFile = path.join(o.work, 'voco-pt', PT_EXPORT_FILE);
  const lists = writeSizeDatalists(path.join(o.work, 'phantoms'), o.sizes, o.validation, ft.phantomOrgans!);
  const arm = (size: number, init: Init, seed: number, initFrom: string, name: string): Arm => ({
    size,
    init,
    seed,
    initFrom,
    run: {
      kind: 'fine-tuning',
      label: `${size} volumes from ${name}, seed ${seed}`,
      args: ['finetune', '--data', lists.get(size)!, ...phantomRunArgs(), '--init-from', initFrom, '--seed', String(seed),
        '--max-steps', String(o.steps), '--val-every', String(o.valEvery), '--cache-dir', o.cacheDir],
      logdir: path.join(finetuneDir, `${size}-volumes-${name.replace(/\W+/g, '-')}-seed-${seed}`),
      finishedFile: SEGMENTER_FILE,
      steps: o.steps,
      identity: () => ({ defaults: ft, weights: init === 'VoCo' ? fileIdentity(resolveWeightSource(pretrainLogdir)) : 'none' }),
    },
  });
  const arms: Arm[] = [];
  // The .pt run right after its twin, so that a mismatch shows within the first runs.
  const ptArm = arm(o.sizes[0], 'VoCo', o.seeds[0], ptFile, 'VoCo pt');
  for (const size of o.sizes) {
    for (const seed of o.seeds) {
      arms.push(arm(size, 'VoCo', seed, pretrainLogdir, 'VoCo'));
      if (arms.length === 1) arms.push(ptArm);
      arms.push(arm(size, 'scratch', seed, 'none', 'scratch'));
    }
  }
  const runs = new BenchRuns([...(pretraining ? [pretraining] : []), ...arms.map((a) => a.run)], log);
  if (pretraining) await runs.run(pretraining);

  // The upstream-format .pt of exactly the file `--init-from <logdir>` reads: the logdir's newest checkpoint.
  const pretrainedFile = resolveWeightSource(pretrainLogdir);
  const exportArgs = ['export', pretrainedFile, '--out', path.dirname(ptFile), '--formats', 'pt'];
  log(`writing ${ptFile}: ${commandLine(['voco', ...exportArgs])}`);
  await runVoco(exportArgs, commandLine(['voco', ...exportArgs]));

  const commands: string[] = [];
  for (const a of arms) commands.push(await runs.run(a.run));

  const curve = (a: Arm) => seriesOf(new MetricsLog(a.run.logdir).read(), MEAN_DICE_KEY);
  const results: ArmRun[] = arms.filter((a) => a !== ptArm).map((a) => ({ size: a.size, init: a.init, seed: a.seed, curve: curve(a) }));
  const twin = arms[0];
  const config = loadCheckpointMeta<RunState<FinetuneConfig, unknown>>(listCheckpoints(checkpointDir(twin.run.logdir)).pop()!.file).config;
  const model = resolveSwinUnetrOptions({ featureSize: config.featureSize, outChannels: classNamesOf(config).length });
  const imports = compareImports(twin.initFrom, ptArm.initFrom, model, twin.seed);
  const metrics = compareMetrics(twin.run.logdir, ptArm.run.logdir);
  const held = seriesOf(new MetricsLog(pretrainLogdir).read(), HELD_OUT_KEY);
  const pretrainedStep = listCheckpoints(checkpointDir(pretrainLogdir)).pop()?.step;

  const seedsText = o.seeds.length > 1 ? `mean of ${o.seeds.length} seeds` : `seed ${o.seeds[0]}`;
  const plotTitle = `Validation mean Dice, n training volumes: VoCo vs scratch (feature size ${config.featureSize}, ${seedsText})`;
  writeBytesAtomically(o.plot, dicePlot(plotTitle, results, o.sizes));
  const section = resultsSection({
    date: new Date().toISOString().slice(0, 10),
    machine: machine(),
    load: [startLoad, load()],
    seconds: (Date.now() - started) / 1000,
    command: commandLine(['npm', 'run', 'bench', '--', 'downstream', ...hideBin(process.argv)]),
    pretraining: `\`${pretrainLogdir}\`${pretraining ? ` (${commandLine(['voco', ...pretraining.args])})` : ' (given with --pretrained)'}, its checkpoint at step ${pretrainedStep}`,
    heldOut: held,
    finetuning:
      `${o.seeds.length} seed(s) x ${o.sizes.length} sizes x 2 initialisations, ${o.steps} steps each, validated every ${o.valEvery} steps ` +
      `on the same ${o.validation} volume(s); settings as saved in the runs' checkpoints: ${effectiveSettings(config)}`,
    table: resultsTable(results, o.sizes, o.seeds),
    seeds: o.seeds.length,
    plot: path.relative(path.dirname(o.doc), o.plot).split(path.sep).join('/'),
    upstream: { file: ptFile, exportedFrom: pretrainedFile, twin: `the ${twin.size}-volume VoCo run, seed ${twin.seed}`, logdir: twin.initFrom, imports, metrics },
    commands,
  });
  writeBytesAtomically(o.doc, replaceSection(o.doc, docText(), section));
  process.stdout.write(`${section}\n\nwrote ${o.doc} and ${o.plot}\n`);
  const same = imports.same && metrics.same;
  if (!same) log(`the .pt run is not the logdir run: imports ${verdict(imports)}; metrics ${verdict(metrics)}`);
  return same ? 0 : 1;
}

main().then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    if (!(error instanceof UserError)) throw error;
    process.stderr.write(`downstream: ${error.message}\n`);
    process.exitCode = 2;
  },
);
