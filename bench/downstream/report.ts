/**
 * What the downstream benchmark writes: the table of final and best validation Dice by training-set size and
 * initialisation, the plot of the Dice curves, and the results section of docs/downstream.md between its markers.
 */
import { UserError } from '../../common/user-error';
import { lossPlotSvg, Series } from '../../runtime/observe/loss-plot';
import { formatDuration } from '../../runtime/observe/progress';
import type { Comparison, ImportComparison } from './same-run';

export type Init = 'VoCo' | 'scratch';
export const INITS: readonly Init[] = ['scratch', 'VoCo'];

/** One fine-tuning run's validation mean Dice against the step. */
export interface ArmRun {
  readonly size: number;
  readonly init: Init;
  readonly seed: number;
  readonly curve: readonly (readonly [step: number, dice: number])[];
}

/** The markers around the section the benchmark writes in docs/downstream.md. */
export const SECTION_BEGIN = '<!-- downstream results: begin (written by `npm run bench -- downstream`; edits here are overwritten) -->';
export const SECTION_END = '<!-- downstream results: end -->';

/** The document has no place for the results. */
export class ResultsDocError extends UserError {}

/** `text` with what lies between the markers replaced by `section`. */
export function replaceSection(file: string, text: string, section: string): string {
  const begin = text.indexOf(SECTION_BEGIN);
  const end = text.indexOf(SECTION_END);
  if (begin < 0 || end < begin) throw new ResultsDocError(`${file}: lacks the lines ${SECTION_BEGIN} and ${SECTION_END} around its results section`);
  return `${text.slice(0, begin + SECTION_BEGIN.length)}\n${section.trim()}\n${text.slice(end)}`;
}

const final = (run: ArmRun) => run.curve[run.curve.length - 1];
const best = (run: ArmRun) => run.curve.reduce((b, p) => (p[1] > b[1] ? p : b));

/** Mean and sample standard deviation (n - 1) of `xs`; the deviation is undefined for fewer than two. */
export function meanAndSpread(xs: readonly number[]): { mean: number; sd?: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  if (xs.length < 2) return { mean };
  return { mean, sd: Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1)) };
}

const dice = (v: number) => v.toFixed(3);
const gain = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(3)}`;
const summary = (xs: readonly number[], format: (v: number) => string) => {
  const { mean, sd } = meanAndSpread(xs);
  return sd === undefined ? format(mean) : `${format(mean)} ± ${sd.toFixed(3)}`;
};

/**
 * The markdown table: per training-set size a row from scratch, one from VoCo and the gain VoCo - scratch (paired
 * by seed: the same data order, crops and fresh decoder), each with the final and the best validation mean Dice per
 * seed and their mean ± standard deviation over the seeds.
 */
export function resultsTable(runs: readonly ArmRun[], sizes: readonly number[], seeds: readonly number[]): string {
  const find = (size: number, init: Init, seed: number) => {
    const run = runs.find((r) => r.size === size && r.init === init && r.seed === seed);
    if (!run || run.curve.length === 0) throw new Error(`no validation Dice for ${size} volumes, ${init}, seed ${seed}`);
    return run;
  };
  const bySeed = `by seed (${seeds.join(', ')})`;
  const rows = [
    `| training volumes | initialisation | final Dice ${bySeed} | final, mean${seeds.length > 1 ? ' ± sd' : ''} | best Dice (step) ${bySeed} | best, mean${seeds.length > 1 ? ' ± sd' : ''} |`,
    '|---:|---|---|---|---|---|',
  ];
  for (const size of sizes) {
    for (const init of INITS) {
      const arm = seeds.map((seed) => find(size, init, seed));
      rows.push(
        `| ${size} | ${init} | ${arm.map((r) => dice(final(r)[1])).join(', ')} | ${summary(arm.map((r) => final(r)[1]), dice)} | ` +
          `${arm.map((r) => `${dice(best(r)[1])} (${best(r)[0]})`).join(', ')} | ${summary(arm.map((r) => best(r)[1]), dice)} |`,
      );
    }
    const paired = (measure: (r: ArmRun) => number) => seeds.map((seed) => measure(find(size, 'VoCo', seed)) - measure(find(size, 'scratch', seed)));
    const [finalGain, bestGain] = [paired((r) => final(r)[1]), paired((r) => best(r)[1])];
    rows.push(`| ${size} | **gain VoCo − scratch** | ${finalGain.map(gain).join(', ')} | **${summary(finalGain, gain)}** | ${bestGain.map(gain).join(', ')} | **${summary(bestGain, gain)}** |`);
  }
  return rows.join('\n');
}

/** Colours by training-set size: VoCo the strong shade, scratch the light one. */
const COLOURS = [
  ['#1f77b4', '#9ecae9'],
  ['#d62728', '#f4a6a6'],
  ['#2ca02c', '#a1d99b'],
  ['#9467bd', '#cbb7e3'],
  ['#ff7f0e', '#fdc48a'],
];

/** The validation mean Dice against the step, one line per size n and initialisation (the mean over seeds). */
export function dicePlot(title: string, runs: readonly ArmRun[], sizes: readonly number[]): string {
  const series: Series[] = [];
  sizes.forEach((size, i) => {
    for (const init of ['VoCo', 'scratch'] as const) {
      const arm = runs.filter((r) => r.size === size && r.init === init);
      const steps = arm[0]?.curve.map(([step]) => step) ?? [];
      const points = steps.map((step, k) => [step, meanAndSpread(arm.map((r) => r.curve[k][1])).mean] as const);
      const [strong, light] = COLOURS[i % COLOURS.length];
      series.push({ label: `n=${size} ${init}`, color: init === 'VoCo' ? strong : light, points, smoothing: 1 });
    }
  });
  return lossPlotSvg(title, series);
}

/** A comparison in words: identical, or DIFFERENT with the first difference. */
export const verdict = (c: Comparison): string => (c.same ? `identical (${c.what})` : `**DIFFERENT** (${c.what}: ${c.difference})`);

export interface ResultsFacts {
  readonly date: string;
  readonly machine: string;
  /** The load averages at the start and at the end. */
  readonly load: readonly [string, string];
  readonly seconds: number;
  /** The benchmark's command line. */
  readonly command: string;
  /** The pre-training in words (logdir, command, checkpoint step). */
  readonly pretraining: string;
  readonly heldOut: readonly (readonly [step: number, loss: number])[];
  /** The fine-tuning runs in words (counts, steps, settings). */
  readonly finetuning: string;
  readonly table: string;
  readonly seeds: number;
  /** The plot, relative to the document. */
  readonly plot: string;
  readonly upstream: {
    readonly file: string;
    readonly exportedFrom: string;
    /** Which run it repeats, in words. */
    readonly twin: string;
    /** The `--init-from` of that run. */
    readonly logdir: string;
    readonly imports: ImportComparison;
    readonly metrics: Comparison;
  };
  /** Every fine-tuning command. */
  readonly commands: readonly string[];
}

const indent = (lines: readonly string[]) => lines.map((l) => `    ${l}`).join('\n');

/** The results section of docs/downstream.md. */
export function resultsSection(f: ResultsFacts): string {
  const u = f.upstream;
  const held = f.heldOut.map(([s, v]) => `${v.toFixed(3)} at step ${s}`).join(', ') || 'not recorded';
  return [
    `Measured ${f.date} on ${f.machine}; load ${f.load[0]} at the start, ${f.load[1]} at the end; ${formatDuration(f.seconds)} in all ` +
      '(runs reused from an earlier invocation not counted). The command:',
    '',
    indent([f.command]),
    '',
    `Pre-training: ${f.pretraining}; held-out loss ${held}.`,
    '',
    `Fine-tuning: ${f.finetuning}.`,
    '',
    f.table,
    '',
    `Final: the validation mean Dice after the last step; best: the highest of the run (its step). ` +
      (f.seeds > 1 ? '± the standard deviation over the seeds (n − 1); the gain is paired by seed.' : 'One seed: no spread.'),
    '',
    `![Validation mean Dice against the step](${f.plot})`,
    '',
    `Upstream-format weights: \`${u.file}\` (\`voco export ${u.exportedFrom} --formats pt\`), fine-tuned as ${u.twin}:`,
    `- imports of \`${u.logdir}\` and of the \`.pt\`: ${verdict(u.imports)}; reports:`,
    ...u.imports.reports.map((r) => `  - ${r.summary}`),
    `- the two runs' metrics: ${verdict(u.metrics)}.`,
    '',
    '<details><summary>The fine-tuning commands</summary>',
    '',
    indent(f.commands),
    '',
    '</details>',
  ].join('\n');
}
