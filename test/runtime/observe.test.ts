import { crc32c } from '@node-rs/crc32';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Reader } from 'protobufjs';
import { lossPlotSvg, movingAverage } from '../../runtime/observe/loss-plot';
import { MetricRecord, MetricsLog, seriesOf } from '../../runtime/observe/metrics-log';
import { TensorBoardWriter } from '../../runtime/observe/tensorboard';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'voco-observe-'));

function unmask(masked: number): number {
  const rot = (masked - 0xa282ead8) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
}

interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  values: Record<string, number>;
}

/** Reads a TFRecord file back, checking both CRCs of every record, and decodes the Event protos. */
function readEvents(file: string): DecodedEvent[] {
  const buf = fs.readFileSync(file);
  const events: DecodedEvent[] = [];
  for (let off = 0; off < buf.length; ) {
    const len = Number(buf.readBigUInt64LE(off));
    expect(unmask(buf.readUInt32LE(off + 8))).toBe(crc32c(buf.subarray(off, off + 8)));
    const payload = buf.subarray(off + 12, off + 12 + len);
    expect(unmask(buf.readUInt32LE(off + 12 + len))).toBe(crc32c(payload));
    off += 16 + len;
    const r = Reader.create(payload);
    const event: DecodedEvent = { wallTime: 0, step: 0, values: {} };
    while (r.pos < r.len) {
      const key = r.uint32();
      if (key >>> 3 === 1) event.wallTime = r.double();
      else if (key >>> 3 === 2) event.step = Number(r.int64());
      else if (key >>> 3 === 3) event.fileVersion = r.string();
      else if (key >>> 3 === 5) {
        const summary = Reader.create(r.bytes());
        while (summary.pos < summary.len) {
          summary.uint32();
          const value = Reader.create(summary.bytes());
          let tag = '';
          let simple = NaN;
          while (value.pos < value.len) {
            const k = value.uint32();
            if (k >>> 3 === 1) tag = value.string();
            else simple = value.float();
          }
          event.values[tag] = simple;
        }
      } else r.skipType(key & 7);
    }
    events.push(event);
  }
  return events;
}

describe('TensorBoard event files', () => {
  test('records are framed with valid masked CRC-32C and decode to the scalars written', () => {
    const dir = tmp();
    const tb = new TensorBoardWriter(dir, 1_700_000_000_000);
    tb.scalars(1, { loss: 0.5, 'loss/intra': 0.25 });
    tb.scalars(2, { loss: 0.375 });
    tb.close();
    expect(path.basename(tb.file)).toMatch(/^events\.out\.tfevents\.1700000000\./);
    const events = readEvents(tb.file);
    expect(events[0].fileVersion).toBe('brain.Event:2');
    expect(events[1]).toMatchObject({ step: 1, values: { loss: 0.5, 'loss/intra': 0.25 } });
    expect(events[2]).toMatchObject({ step: 2, values: { loss: 0.375 } });
  });
});

describe('metrics log', () => {
  test('reads back every complete line and skips one cut short by a kill', () => {
    const log = new MetricsLog(tmp());
    log.append({ step: 1, loss: 2 });
    log.append({ step: 2, loss: 1.5 });
    fs.appendFileSync(log.file, '{"step": 3, "lo');
    expect(log.read()).toEqual([{ step: 1, loss: 2 }, { step: 2, loss: 1.5 }]);
  });

  test('a series is the records that hold a number under its key, against their step', () => {
    const records: MetricRecord[] = [{ step: 0, dice: 0.1 }, { step: 1, loss: 2 }, { step: 1, dice: 'n/a' }, { step: 2, loss: 1, dice: 0.3 }];
    expect(seriesOf(records, 'dice')).toEqual([[0, 0.1], [2, 0.3]]);
    expect(seriesOf(records, 'loss')).toEqual([[1, 2], [2, 1]]);
    expect(seriesOf(records, 'lr')).toEqual([]);
  });
});

describe('loss plot', () => {
  test('moving average over a window', () => {
    expect(movingAverage([[0, 1], [1, 3], [2, 5], [3, 7]], 2)).toEqual([[0, 1], [1, 2], [2, 4], [3, 6]]);
  });
  test('draws one raw and one smoothed line per series, with a legend', () => {
    const svg = lossPlotSvg('run <a>', [
      { label: 'loss', color: '#d62728', points: [[0, 1], [1, 0.8], [2, NaN], [3, 0.5]] },
      { label: 'loss.intra', color: '#1f77b4', points: [[0, 0.6], [3, 0.3]] },
    ]);
    expect(svg.match(/<polyline/g)).toHaveLength(4);
    expect(svg).toContain('run &lt;a&gt;');
    expect(svg).toContain('>loss.intra</text>');
    expect(svg).not.toContain('NaN');
  });
});
