import { SingleBar } from 'cli-progress';
import { accessSync, constants, mkdirSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { UserError } from '../common/user-error';
import { buildCache, BuildSource, BuildSummary, Shard } from '../data/cache/build';
import { CACHE_DTYPES, CacheDtype } from '../data/cache/quantize';
import type { CacheCompression } from '../data/cache/format';
import { DEFAULT_CACHE_COMPRESSION, DEFAULT_CACHE_DTYPE, volumeCacheDir } from '../data/cache/store';
import { isLabelledDatalist } from '../data/datalist';
import { loaderSources, readDataEntries } from '../data/loader/sources';
import { FAMILIES, Family } from '../data/pipeline';
import { checkSpacing } from '../runtime/finetune/config';
import { chainParams, datalistPairSources } from '../runtime/finetune/data';

/** A `voco cache` option that cannot be used. */
export class CacheOptionError extends UserError {}

interface CacheBuildArgs {
  data: string;
  'cache-dir': string;
  shard?: string;
  workers: number;
  for?: 'train' | 'finetune';
  family?: Family;
  resize: boolean;
  spacing?: number[];
  dtype: CacheDtype;
  compression: CacheCompression;
  'retry-bad': boolean;
}

export function parseShard(text: string | undefined): Shard | undefined {
  if (text === undefined) return undefined;
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = match ? Number(match[1]) : NaN;
  const count = match ? Number(match[2]) : NaN;
  if (!(count >= 1 && index >= 1 && index <= count)) {
    throw new CacheOptionError(`--shard must be i/N with 1 <= i <= N (e.g. 2/4), got '${text}'`);
  }
  return { index, count };
}

function buildOptions(yargs: Argv): Argv<CacheBuildArgs> {
  return yargs
    .option('data', { type: 'string', demandOption: true, describe: 'pre-training config or Decathlon dataset JSON (a labelled one: image/label pairs)' })
    .option('cache-dir', { type: 'string', demandOption: true, describe: 'cache folder (created if missing; may be shared by several machines)' })
    .option('shard', { type: 'string', describe: 'i/N: build only every N-th source file, starting with the i-th (1-based)' })
    .option('workers', { type: 'number', default: 1, describe: 'worker threads preprocessing at once' })
    .option('for', {
      choices: ['train', 'finetune'] as const,
      describe: 'the command the entries are for: train (volumes) or finetune (image/label pairs, as voco finetune reads them)',
      defaultDescription: 'finetune for a datalist whose training entries all name a label, else train',
    })
    .option('family', { choices: FAMILIES, describe: 'family of a Decathlon JSON\'s files (a config names its own); pairs for finetune: abdomen only', defaultDescription: 'abdomen' })
    .option('resize', { type: 'boolean', default: false, describe: 'with a Decathlon JSON: resize to 192x192x64 (head-and-neck / unlabelled-abdomen variant)' })
    .option('spacing', { type: 'array', number: true, describe: 'pairs for finetune: the voxel size in mm (x y z), as given to voco finetune --spacing', defaultDescription: '1.5 1.5 1.5' })
    .option('dtype', { choices: CACHE_DTYPES, default: DEFAULT_CACHE_DTYPE, describe: 'storage type of the voxel values' })
    .option('compression', { choices: ['none', 'deflate'] as const, default: DEFAULT_CACHE_COMPRESSION, describe: 'compression of the entries' })
    .option('retry-bad', { type: 'boolean', default: false, describe: 'try again the files an earlier run recorded as bad' }) as unknown as Argv<CacheBuildArgs>;
}

async function runBuild(args: CacheBuildArgs): Promise<void> {
  const shard = parseShard(args.shard);
  if (!Number.isInteger(args.workers) || args.workers < 0) throw new CacheOptionError(`--workers must be a whole number >= 0, got ${args.workers}`);
  ensureWritableFolder(args['cache-dir']);
  const plan = buildPlan(args);
  const bar = new SingleBar({
    format: `cache build |{bar}| {value}/{total} ${plan.unit} | {rate}/s | ETA {eta_formatted}`,
    etaBuffer: 20,
    hideCursor: true,
  });
  const started = Date.now();
  const summary = await buildCache({
    sources: plan.sources,
    cache: { dir: volumeCacheDir(args['cache-dir']), dtype: args.dtype, compression: args.compression },
    shard,
    workers: args.workers,
    retryBad: args['retry-bad'],
    onStart: (total) => bar.start(total, 0, { rate: '0.0' }),
    onEvent: (_event, done) => bar.update(done, { rate: (done / Math.max((Date.now() - started) / 1000, 1e-3)).toFixed(1) }),
  });
  bar.stop();
  process.stdout.write(describeSummary(summary, shard, (Date.now() - started) / 1000, plan));
}

/** What a build makes: its sources, which command reads them, and what to call them. */
interface BuildPlan {
  readonly sources: readonly BuildSource[];
  readonly purpose: string;
  readonly unit: string;
}

/**
 * The entries of `--data`: for finetune, every image/label pair of the datalist (training and validation) under
 * the keys `voco finetune --data D [--spacing ...]` reads; for train, every volume under the keys `voco train` reads.
 */
function buildPlan(args: CacheBuildArgs): BuildPlan {
  const target = args.for ?? (isLabelledDatalist(args.data) ? 'finetune' : 'train');
  if (target === 'train') {
    if (args.spacing !== undefined) throw new CacheOptionError('--spacing applies to image/label pairs (--for finetune); pre-training volumes take their family\'s voxel size');
    const sources = loaderSources(readDataEntries(args.data, args.family ?? 'abdomen', { resize: args.resize }));
    return { sources, purpose: 'voco train', unit: 'source files' };
  }
  if (args.family !== undefined && args.family !== 'abdomen') {
    throw new CacheOptionError(`--family ${args.family}: voco finetune preprocesses image/label pairs with the abdomen chain (--for train builds pre-training volumes)`);
  }
  if (args.resize) throw new CacheOptionError('--resize applies to pre-training volumes (--for train), not to image/label pairs');
  checkSpacing(args.spacing);
  const spacing = chainParams(args.spacing).pixdim.join(' x ');
  return { sources: datalistPairSources(args.data, args.spacing), purpose: `voco finetune at ${spacing} mm`, unit: 'image/label pairs' };
}

function ensureWritableFolder(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (error) {
    throw new CacheOptionError(`--cache-dir ${dir} is not a writable folder (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
}

export function describeSummary(summary: BuildSummary, shard: Shard | undefined, seconds: number, plan: Pick<BuildPlan, 'purpose' | 'unit'>): string {
  const where = shard ? ` (shard ${shard.index}/${shard.count})` : '';
  const rebuilt = summary.rebuiltCorrupt > 0 ? ` (${summary.rebuiltCorrupt} of them replacing damaged entries)` : '';
  const lines = [
    `cache build for ${plan.purpose}${where}: ${summary.total} ${plan.unit} in ${seconds.toFixed(1)} s: ${summary.built} built${rebuilt}, ` +
      `${summary.cached} already cached, ${summary.bad.length} bad`,
  ];
  for (const bad of summary.bad) lines.push(`  bad: ${bad.path}: ${bad.reason}${bad.known ? ' (recorded by an earlier run; --retry-bad tries again)' : ''}`);
  return lines.join('\n') + '\n';
}

export const cacheCommand: CommandModule = {
  command: 'cache',
  describe: 'Manage the cache of preprocessed volumes and image/label pairs',
  builder: (yargs) =>
    yargs.command({
      command: 'build',
      describe: 'Preprocess every source file (or image/label pair) of a dataset into the cache as voco train (or finetune) reads it (resumable, shardable across machines)',
      builder: buildOptions,
      handler: runBuild,
    }).demandCommand(1, 'Name a cache action: build.'),
  handler: () => undefined,
};
