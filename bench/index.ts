/**
 * `npm run bench`: every benchmark, one after the other, each in a process of its own (so that one's peak memory
 * and threads do not colour the next), with its default arguments. Each prints its own markdown; see its header
 * for what it measures and docs/performance.md for recorded results. A failing benchmark does not stop the others;
 * the exit status says whether all succeeded.
 * Run: npx tsx bench/index.ts [name ...]   (names as in BENCHMARKS, e.g. `voco-train-step`; default all)
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const BENCHMARKS = ['graph-ops', 'graph', 'preprocess', 'data', 'allreduce', 'voco-step', 'voco-train-step', 'swinunetr-step', 'voco-memory'];

function main(): number {
  const wanted = process.argv.length > 2 ? process.argv.slice(2) : BENCHMARKS;
  const unknown = wanted.filter((n) => !BENCHMARKS.includes(n));
  if (unknown.length) {
    process.stderr.write(`unknown benchmark(s) ${unknown.join(', ')}; choose from ${BENCHMARKS.join(', ')}\n`);
    return 2;
  }
  const tsx = path.join(__dirname, '..', 'node_modules', '.bin', 'tsx');
  const failed: string[] = [];
  for (const name of wanted) {
    const file = path.join(__dirname, `${name}.bench.ts`);
    if (!fs.existsSync(file)) {
      process.stdout.write(`\n## ${name}: skipped (${path.relative(process.cwd(), file)} is missing)\n`);
      continue;
    }
    process.stdout.write(`\n## ${name} (${new Date().toISOString()})\n\n`);
    const started = Date.now();
    const run = spawnSync(tsx, [file], { stdio: 'inherit' });
    const seconds = ((Date.now() - started) / 1000).toFixed(0);
    if (run.status !== 0) failed.push(name);
    process.stdout.write(`\n(${name}: ${run.status === 0 ? 'done' : `failed with status ${run.status ?? run.signal}`} in ${seconds} s)\n`);
  }
  if (failed.length) process.stdout.write(`\nfailed: ${failed.join(', ')}\n`);
  return failed.length ? 1 : 0;
}

process.exitCode = main();
