/**
 * `voco evaluate` results as text: aligned tables for the terminal and CSV rows for a file. The CSV holds one row
 * per case (status, Dice per class and mean, HD95 per class, the files), then two summary rows: `summary: mean`
 * (per class: mean Dice over the cases with the class, mean HD95 over the cases where it is a number; mean Dice:
 * MONAI's mean) and `summary: cases` (the counts those means are over).
 */
import type { CaseResult, EvaluationSummary } from './evaluate';

export type ClassNames = ReadonlyMap<number, string> | undefined;

/** Names of foreground classes 1 .. count, from the datalist's table or `class <c>`. */
export function foregroundNames(names: ClassNames, count: number): string[] {
  return Array.from({ length: count }, (_, k) => names?.get(k + 1) ?? `class ${k + 1}`);
}

const formatValue = (v: number | undefined, digits: number): string =>
  v === undefined || Number.isNaN(v) ? 'nan' : v === Infinity ? 'inf' : v.toFixed(digits);

/** Per case: name, then Dice per class and the mean (rows of cases that were scored). */
export function diceTable(cases: readonly CaseResult[], names: readonly string[]): string[][] {
  const scored = cases.filter((c) => c.status === 'ok');
  return [['case', ...names, 'mean'], ...scored.map((c) => [c.name, ...names.map((_, k) => formatValue(c.dice[k], 4)), formatValue(c.meanDice, 4)])];
}

export function hd95Table(cases: readonly CaseResult[], names: readonly string[]): string[][] {
  const scored = cases.filter((c) => c.status === 'ok');
  return [['case', ...names], ...scored.map((c) => [c.name, ...names.map((_, k) => formatValue(c.hd95[k], 2))])];
}

/** Per class: cases with it, mean Dice, mean HD95 and over how many cases, missed, false positives; then all. */
export function summaryTable(summary: EvaluationSummary, names: readonly string[]): string[][] {
  return [
    ['class', 'cases', 'mean Dice', 'mean HD95 mm', 'HD95 cases', 'missed', 'false positive'],
    ...summary.classes.map((s, k) => [
      names[k],
      String(s.casesWithClass),
      formatValue(s.meanDice, 4),
      formatValue(s.meanHd95, 2),
      String(s.hd95Cases),
      String(s.missed),
      String(s.falsePositive),
    ]),
    ['all classes', String(summary.meanDice.notNans), formatValue(summary.meanDice.value, 4), '', '', '', ''],
  ];
}

export function csvRows(cases: readonly CaseResult[], summary: EvaluationSummary, names: readonly string[]): string[][] {
  const header = ['case', 'status', ...names.map((n) => `dice_${n}`), 'dice_mean', ...names.map((n) => `hd95_mm_${n}`), 'prediction', 'truth', 'problem'];
  const rows = cases.map((c) => [
    c.name,
    c.status,
    ...names.map((_, k) => (c.status === 'ok' ? formatValue(c.dice[k] ?? NaN, 6) : '')),
    c.status === 'ok' ? formatValue(c.meanDice, 6) : '',
    ...names.map((_, k) => (c.status === 'ok' ? formatValue(c.hd95[k] ?? NaN, 4) : '')),
    c.prediction,
    c.truth,
    c.problem ?? '',
  ]);
  const classes = summary.classes;
  const mean = ['summary: mean', `${summary.evaluated} evaluated`, ...classes.map((s) => formatValue(s.meanDice, 6)), formatValue(summary.meanDice.value, 6), ...classes.map((s) => formatValue(s.meanHd95, 4)), '', '', ''];
  const counts = ['summary: cases', '', ...classes.map((s) => String(s.casesWithClass)), String(summary.meanDice.notNans), ...classes.map((s) => String(s.hd95Cases)), '', '', ''];
  return [header, ...rows, mean, counts];
}
