import { SingleBar } from 'cli-progress';

export interface StepReport {
  readonly step: number;
  readonly loss: number;
  readonly parts: Readonly<Record<string, number>>;
  readonly lr: number;
}

/**
 * The progress line of a training run: step of total, steps/s and crops/s over a recent window, ETA, loss and
 * its parts, learning rate. On a terminal it redraws in place; in a log file it prints a line every few seconds.
 */
export class TrainingProgress {
  private readonly bar: SingleBar;
  private readonly times: number[] = [];

  constructor(
    private readonly totalSteps: number,
    private readonly cropsPerStep: number,
    startStep: number,
    stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.bar = new SingleBar({
      format: 'step {value}/{total} {bar} {rate} steps/s {crops} crops/s ETA {etaText} | loss {loss} {parts} | lr {lr}',
      barsize: 20,
      stream,
      noTTYOutput: true,
      notTTYSchedule: 5000,
      etaBuffer: 20,
      hideCursor: false,
    });
    this.bar.start(totalSteps, startStep, this.payload(startStep, undefined));
  }

  update(report: StepReport, now = Date.now()): void {
    this.times.push(now);
    if (this.times.length > 20) this.times.shift();
    this.bar.update(report.step, this.payload(report.step, report));
  }

  stop(): void {
    this.bar.stop();
  }

  private payload(step: number, report: StepReport | undefined): Record<string, string> {
    const span = this.times.length > 1 ? (this.times[this.times.length - 1] - this.times[0]) / 1000 : 0;
    const rate = span > 0 ? (this.times.length - 1) / span : 0;
    return {
      rate: rate.toFixed(2),
      crops: (rate * this.cropsPerStep).toFixed(1),
      etaText: rate > 0 ? formatDuration((this.totalSteps - step) / rate) : '?',
      loss: report ? report.loss.toFixed(4) : '-',
      parts: report ? Object.entries(report.parts).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(' ') : '',
      lr: report ? report.lr.toExponential(2) : '-',
    };
  }
}

/**
 * The progress line of sliding-window inference over one volume: windows done of total, windows/s, ETA. On a
 * terminal it redraws in place; in a log file it prints a line every few seconds.
 */
export class WindowProgress {
  private readonly bar: SingleBar;
  private readonly started: number;

  constructor(
    label: string,
    total: number,
    stream: NodeJS.WriteStream = process.stderr,
    now = Date.now(),
  ) {
    this.started = now;
    this.bar = new SingleBar({
      format: `${label.replace(/[{}]/g, '')} windows {value}/{total} {bar} {rate} windows/s ETA {etaText}`,
      barsize: 20,
      stream,
      noTTYOutput: true,
      notTTYSchedule: 5000,
      hideCursor: false,
    });
    this.bar.start(total, 0, { rate: '-', etaText: '?' });
  }

  update(done: number, total: number, now = Date.now()): void {
    const seconds = (now - this.started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    this.bar.update(done, { rate: rate.toFixed(2), etaText: rate > 0 ? formatDuration((total - done) / rate) : '?' });
  }

  stop(): void {
    this.bar.stop();
  }
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}
