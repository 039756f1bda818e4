import type { CommandModule } from 'yargs';
import { writePhantomDataset } from '../data/phantom/dataset';
import { ORGANS } from '../data/phantom/organs';

interface PhantomArgs {
  dir: string;
  count: number;
  seed: number;
  validation: number;
  contrast: 'random' | 'yes' | 'no';
}

export const phantomCommand: CommandModule<object, PhantomArgs> = {
  command: 'phantom <dir>',
  describe: 'Write procedural abdominal CT phantoms (NIfTI, in HU), their organ label maps and a Decathlon dataset.json: the built-in data set',
  builder: (yargs) =>
    yargs
      .positional('dir', { type: 'string', demandOption: true, describe: 'folder to write (created if missing)' })
      .option('count', { type: 'number', default: 8, describe: 'number of volumes' })
      .option('seed', { type: 'number', default: 0, describe: 'the same seed writes the same volumes' })
      .option('validation', { type: 'number', default: 0, describe: 'how many of them (the last ones) go to the validation list' })
      .option('contrast', { choices: ['random', 'yes', 'no'] as const, default: 'random' as const, describe: 'contrast-enhanced scans' }),
  handler: (args) => {
    const contrast = args.contrast === 'random' ? 'random' : args.contrast === 'yes';
    const json = writePhantomDataset(args.dir, { count: args.count, seed: args.seed, validation: args.validation, phantom: { contrast } });
    process.stdout.write(`wrote ${args.count} phantom CT volumes with ${ORGANS.length} organ labels (${ORGANS.join(', ')}) and ${json}\n`);
  },
};
