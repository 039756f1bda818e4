import { parentPort, workerData } from 'node:worker_threads';
import { BuildJob, BuildReply, BuildWorkerData, buildOne } from './build';
import { VolumeCache } from './store';

const { cache: settings, retryBad } = workerData as BuildWorkerData;
const cache = new VolumeCache(settings);
const port = parentPort!;

port.on('message', (job: BuildJob) => {
  buildOne(cache, job.source, retryBad).then(
    (event) => port.postMessage({ index: job.index, event } satisfies BuildReply),
    (error: Error) => port.postMessage({ index: job.index, error: error.message } satisfies BuildReply),
  );
});
