import * as fs from 'fs';
import * as path from 'path';
import type { Argv, CommandModule } from 'yargs';
import { writeBytesAtomically } from '../common/atomic-file';
import { alignedTable, csvText } from '../common/table';
import { UserError } from '../common/user-error';
import { DatalistKey, loadLabelledList } from '../data/datalist';
import { CaseResult, HD_PERCENTILE, evaluateCase, summarise } from '../data/metrics/evaluate';
import { csvRows, diceTable, foregroundNames, hd95Table, summaryTable } from '../data/metrics/evaluation-report';
import { PREDICTION_SUFFIX } from '../data/prediction-name';

export interface EvaluateArgs {
  pred: string;
  truth: string;
  list: DatalistKey;
  out?: string;
}

export const evaluateCommand: CommandModule<object, EvaluateArgs> = {
  command: 'evaluate',
  describe: `Dice and HD${HD_PERCENTILE} of label maps (<image name>${PREDICTION_SUFFIX}) against a datalist's labels, per case and summarised`,
  builder: (yargs: Argv) =>
    yargs
      .option('pred', { type: 'string', demandOption: true, describe: `folder of predicted label maps named <image name>${PREDICTION_SUFFIX}` })
      .option('truth', { type: 'string', demandOption: true, describe: 'Decathlon datalist JSON with {image, label} entries (and optionally a "labels" table of class names)' })
      .option('list', { choices: ['validation', 'training', 'test'] as const, default: 'validation' as const, describe: 'which list of the datalist to evaluate' })
      .option('out', { type: 'string', describe: 'also write the per-case results and the summary as CSV' }) as unknown as Argv<EvaluateArgs>,
  handler: (args) => {
    if (!fs.existsSync(args.pred) || !fs.statSync(args.pred).isDirectory()) throw new UserError(`--pred: folder ${args.pred} does not exist`);
    if (args.out !== undefined && !fs.existsSync(path.dirname(path.resolve(args.out)))) throw new UserError(`--out: folder ${path.dirname(path.resolve(args.out))} does not exist`);
    const list = loadLabelledList(args.truth, args.list, { checkExists: false });
    const numClasses = list.classNames && Math.max(...list.classNames.keys()) + 1;
    process.stderr.write(`evaluating the "${list.key}" list of ${args.truth}: ${list.entries.length} cases, predictions from ${args.pred}\n`);
    const cases: CaseResult[] = list.entries.map((entry, i) => {
      const result = evaluateCase(entry, args.pred, numClasses);
      const outcome = result.status === 'ok' ? `mean Dice ${Number.isNaN(result.meanDice) ? 'nan (no foreground class in the truth)' : result.meanDice.toFixed(4)}` : result.status === 'failed' ? `failed: ${result.problem}` : `missing prediction ${result.prediction}`;
      process.stderr.write(`[${i + 1}/${list.entries.length}] ${result.name}: ${outcome}\n`);
      return result;
    });
    const foreground = numClasses !== undefined ? numClasses - 1 : Math.max(0, ...cases.map((c) => c.dice.length));
    const names = foregroundNames(list.classNames, foreground);
    const summary = summarise(cases, foreground);
    const out = process.stdout;
    out.write(`\nDice\n${alignedTable(diceTable(cases, names))}\n\nHD${HD_PERCENTILE} (mm)\n${alignedTable(hd95Table(cases, names))}\n`);
    out.write(`\nSummary (${summary.evaluated} cases evaluated, ${summary.missingPredictions} missing predictions, ${summary.failed} failed)\n`);
    out.write(`${alignedTable(summaryTable(summary, names))}\n`);
    for (const c of cases) if (c.status !== 'ok') out.write(`${c.status}: ${c.name}: ${c.problem ?? c.prediction}\n`);
    if (args.out !== undefined) {
      writeBytesAtomically(args.out, csvText(csvRows(cases, summary, names)));
      out.write(`wrote ${args.out}\n`);
    }
    if (summary.evaluated === 0) throw new UserError(`no case could be evaluated: ${summary.missingPredictions} predictions missing from ${args.pred}, ${summary.failed} failed`);
  },
};
