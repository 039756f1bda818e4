import * as fs from 'node:fs';
import * as path from 'node:path';

export type MetricRecord = Readonly<Record<string, number | string>>;

/** Appends one JSON object per line to `<logdir>/metrics.jsonl`; readable while the run goes on. */
export class MetricsLog {
  readonly file: string;

  constructor(logdir: string) {
    fs.mkdirSync(logdir, { recursive: true });
    this.file = path.join(logdir, 'metrics.jsonl');
  }

  append(record: MetricRecord): void {
    fs.appendFileSync(this.file, JSON.stringify(record) + '\n');
  }

  /** Every record written so far, skipping a final line cut short by a kill. */
  read(): MetricRecord[] {
    if (!fs.existsSync(this.file)) return [];
    const records: MetricRecord[] = [];
    for (const line of fs.readFileSync(this.file, 'utf8').split('\n')) {
      if (!line) continue;
      try {
        records.push(JSON.parse(line) as MetricRecord);
      } catch {
        // a line cut short by a kill; the next resume appends after it
      }
    }
    return records;
  }
}

/** The records' values of `key` against their step, in logged order (records without a number there left out). */
export function seriesOf(records: readonly MetricRecord[], key: string): [step: number, value: number][] {
  return records.filter((r) => typeof r[key] === 'number').map((r) => [Number(r.step), r[key] as number]);
}
