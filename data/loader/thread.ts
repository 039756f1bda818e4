import { extname } from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * Starts the worker module `modulePath` (given without extension; the caller's own extension is used, so .ts under
 * tsx or jest and .js once compiled). A worker thread does not inherit the TypeScript hooks of jest or tsx, so for
 * .ts sources the bootstrap registers tsx's require hook before loading the module.
 */
export function startWorker(modulePath: string, workerData: unknown): Worker {
  const extension = extname(__filename);
  const file = `${modulePath}${extension}`;
  const register = extension === '.ts' ? `require(${JSON.stringify(require.resolve('tsx/cjs/api'))}).register();` : '';
  return new Worker(`${register}require(${JSON.stringify(file)});`, { eval: true, workerData });
}
