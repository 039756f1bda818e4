import { crc32c } from '@node-rs/crc32';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writer } from 'protobufjs';

/**
 * Appends scalar summaries to a TensorBoard event file (`events.out.tfevents.<time>.<host>`): TFRecord framing
 * (length, masked CRC-32C of the length, payload, masked CRC-32C of the payload) around `tensorflow.Event`
 * protos, each carrying a `Summary` of simple values.
 */
export class TensorBoardWriter {
  readonly file: string;
  private readonly fd: number;

  constructor(logdir: string, now = Date.now()) {
    fs.mkdirSync(logdir, { recursive: true });
    this.file = path.join(logdir, `events.out.tfevents.${Math.floor(now / 1000)}.${os.hostname()}`);
    this.fd = fs.openSync(this.file, 'a');
    this.writeRecord(encodeEvent(now / 1000, 0, (w) => w.uint32(fieldKey(3, 2)).string('brain.Event:2')));
  }

  scalars(step: number, values: Readonly<Record<string, number>>, now = Date.now()): void {
    const summary = Writer.create();
    for (const [tag, value] of Object.entries(values)) {
      const entry = Writer.create().uint32(fieldKey(1, 2)).string(tag).uint32(fieldKey(2, 5)).float(value).finish();
      summary.uint32(fieldKey(1, 2)).bytes(entry);
    }
    const summaryBytes = summary.finish();
    this.writeRecord(encodeEvent(now / 1000, step, (w) => w.uint32(fieldKey(5, 2)).bytes(summaryBytes)));
  }

  flush(): void {
    fs.fsyncSync(this.fd);
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private writeRecord(payload: Uint8Array): void {
    const header = Buffer.alloc(12);
    header.writeBigUInt64LE(BigInt(payload.length), 0);
    header.writeUInt32LE(maskedCrc(header.subarray(0, 8)), 8);
    const footer = Buffer.alloc(4);
    footer.writeUInt32LE(maskedCrc(payload), 0);
    fs.writeSync(this.fd, Buffer.concat([header, payload, footer]));
  }
}

function encodeEvent(wallTime: number, step: number, body: (w: Writer) => void): Uint8Array {
  const w = Writer.create().uint32(fieldKey(1, 1)).double(wallTime).uint32(fieldKey(2, 0)).int64(step);
  body(w);
  return w.finish();
}

function fieldKey(field: number, wireType: number): number {
  return (field << 3) | wireType;
}

function maskedCrc(data: Uint8Array): number {
  const crc = crc32c(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}
