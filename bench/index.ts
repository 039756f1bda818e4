/**
 * `npm run bench`: every benchmark of BENCHMARKS, one after the other, each in a process of its own (so that one's
 * peak memory and threads do not colour the next), with its default arguments. Each prints its own markdown; see
 * its header for what it measures and docs/performance.md for recorded results. A failing benchmark does not stop
 * the others; the exit status says whether all succeeded. BY_NAME_ONLY ones take an hour or more and run only
 * when named.
 * Run: npx tsx bench/index.ts [name ...] [--option ...]   (names as in BENCHMARKS or BY_NAME_ONLY, e.g.
 * `voco-train-step`; default all of BENCHMARKS; options after one name go to that benchmark, e.g.
 * `npm run bench -- downstream --seeds 0,1`)
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const BENCHMARKS = ['graph-ops', 'graph', 'preprocess', 'data', 'allreduce', 'voco-step', 'voco-train-step', 'swinunetr-step', 'voco-memory'];
/** Run only when named: the value of pre-training, measured (docs/downstream.md), over an hour and a half. */
const BY_NAME_ONLY = ['downstream'];

function main(): number {
  const args = process.argv.slice(2);
  const firstOption = args.findIndex((a) => a.startsWith('-'));
  const named = firstOption < 0 ? args : args.slice(0, firstOption);
  const options = firstOption < 0 ? [] : args.slice(firstOption);
  const wanted = named.length ? named : BENCHMARKS;
  const known = [...BENCHMARKS, ...BY_NAME_ONLY];
  const unknown = wanted.filter((n) => !known.includes(n));
  if (unknown.length) {
    process.stderr.write(`unknown benchmark(s) ${unknown.join(', ')}; choose from ${known.join(', ')}\n`);
    return 2;
  }
  if (options.length && named.length !== 1) {
    process.stderr.write(`options (${options.join(' ')}) go to one benchmark: name it first, e.g. npm run bench -- downstream ${options.join(' ')}\n`);
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
    const run = spawnSync(tsx, [file, ...options], { stdio: 'inherit' });
    const seconds = ((Date.now() - started) / 1000).toFixed(0);
    if (run.status !== 0) failed.push(name);
    process.stdout.write(`\n(${name}: ${run.status === 0 ? 'done' : `failed with status ${run.status ?? run.signal}`} in ${seconds} s)\n`);
  }
  if (failed.length) process.stdout.write(`\nfailed: ${failed.join(', ')}\n`);
  return failed.length ? 1 : 0;
}

process.exitCode = main();
