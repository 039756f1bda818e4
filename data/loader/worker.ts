import { parentPort, workerData } from 'node:worker_threads';
import { BatchFailure } from './batch-builder';
import type { BuildReply, BuildRequest, TaskConfig } from './protocol';
import { createTaskBuilder } from './volume-task';

const builder = createTaskBuilder(workerData as TaskConfig);
const port = parentPort!;

// Requests come one at a time (the loader sends a worker its next step only after the previous reply), so an
// unexpected error is left to crash the thread: the loader turns that into LoaderWorkerCrashError.
port.on('message', async (request: BuildRequest) => {
  const built = await builder.build(request.cursor);
  if (built instanceof BatchFailure) {
    port.postMessage({ type: 'failure', step: request.cursor.step, kind: built.kind, message: built.message } satisfies BuildReply);
    return;
  }
  const reply: BuildReply = { type: 'batch', ...built };
  port.postMessage(reply, Object.values(built.arrays).map((a) => a.buffer) as ArrayBuffer[]);
});
