import * as fs from 'fs';
import { WeightFileError } from './errors';

/** Node reads at most this many bytes in one call; larger ranges are read in pieces. */
const MAX_READ = 1 << 30;

/** Positional reads from an open file, for formats whose parts are read by byte range (never the whole file). */
export class RandomAccessFile {
  readonly size: number;
  private fd: number | undefined;

  constructor(readonly file: string) {
    try {
      this.fd = fs.openSync(file, 'r');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new WeightFileError(file, `cannot be read (${code === 'ENOENT' ? 'no such file' : code})`);
    }
    const stat = fs.fstatSync(this.fd);
    if (!stat.isFile()) {
      this.close();
      throw new WeightFileError(file, 'is not a regular file');
    }
    this.size = stat.size;
  }

  /** Fills `target` from `position`; returns how many bytes the file had there (less than asked at its end). */
  readInto(target: Uint8Array, position: number): number {
    if (this.fd === undefined) throw new Error(`${this.file} is closed`);
    let done = 0;
    while (done < target.length) {
      const n = fs.readSync(this.fd, target, done, Math.min(MAX_READ, target.length - done), position + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  /**
   * `length` bytes from `position` in a buffer of their own (offset 0, so any typed array can view it);
   * undefined when the file ends before.
   */
  read(position: number, length: number): Uint8Array | undefined {
    const target = new Uint8Array(length);
    return this.readInto(target, position) === length ? target : undefined;
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Runs `use` on the opened file and closes it afterwards, whatever happens. */
export function withFile<T>(file: string, use: (f: RandomAccessFile) => T): T {
  const f = new RandomAccessFile(file);
  try {
    return use(f);
  } finally {
    f.close();
  }
}
