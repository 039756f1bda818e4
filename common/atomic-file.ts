import * as fs from 'node:fs';
import * as path from 'node:path';
import { threadId } from 'node:worker_threads';

/** Node writes at most this many bytes in one call; larger buffers are written in pieces. */
const MAX_WRITE = 1 << 30;
let tempCounter = 0;

/**
 * Writes `file` through `write(fd)` into a temporary file beside it, flushes it to disk and renames it into place,
 * so that `file` is either the old one or the complete new one, never half-written (also with several processes
 * or threads writing the same file: the last rename wins).
 */
export function writeFileAtomically(file: string, write: (fd: number) => void): void {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${threadId}.${tempCounter++}.tmp`);
  const fd = fs.openSync(temp, 'w');
  try {
    write(fd);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(temp, file);
  } catch (error) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
    fs.rmSync(temp, { force: true });
    throw error;
  }
}

/** `writeFileAtomically` for bytes or text already in memory. */
export function writeBytesAtomically(file: string, bytes: Uint8Array | string): void {
  writeFileAtomically(file, (fd) => writeAll(fd, typeof bytes === 'string' ? Buffer.from(bytes) : bytes));
}

/** Writes all of `bytes` at the current position of `fd`. */
export function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; ) {
    done += fs.writeSync(fd, bytes, done, Math.min(MAX_WRITE, bytes.length - done));
  }
}
