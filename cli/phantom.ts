import * as fs from 'fs';
import * as path from 'path';
import type { CommandModule } from 'yargs';
import { writeBytesAtomically } from '../common/atomic-file';
import { UserError } from '../common/user-error';
import { loadVolume } from '../data/nifti/read';
import { writePhantomDataset } from '../data/phantom/dataset';
import { ORGANS } from '../data/phantom/organs';
import { renderLabelSlices } from '../data/render/label-slices';
import { orientRas } from '../data/transforms/orientation';

interface PhantomArgs {
  dir: string;
  count: number;
  seed: number;
  validation: number;
  contrast: 'random' | 'yes' | 'no';
  png?: string;
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
      .option('contrast', { choices: ['random', 'yes', 'no'] as const, default: 'random' as const, describe: 'contrast-enhanced scans' })
      .option('png', { type: 'string', describe: 'also write a PNG of the first volume: mid axial and coronal slices with its organ labels' }),
  handler: (args) => {
    const pngDir = args.png === undefined ? undefined : path.dirname(path.resolve(args.png));
    if (pngDir !== undefined && !fs.existsSync(pngDir)) throw new UserError(`output folder ${pngDir} does not exist`);
    const contrast = args.contrast === 'random' ? 'random' : args.contrast === 'yes';
    const json = writePhantomDataset(args.dir, { count: args.count, seed: args.seed, validation: args.validation, phantom: { contrast } });
    process.stdout.write(`wrote ${args.count} phantom CT volumes with ${ORGANS.length} organ labels (${ORGANS.join(', ')}) and ${json}\n`);
    if (args.png !== undefined) {
      const dataset = JSON.parse(fs.readFileSync(json, 'utf8'));
      const [first] = [...dataset.training, ...dataset.validation];
      const [image, label] = [first.image, first.label].map((f: string) => orientRas(loadVolume(path.join(args.dir, f)).volume));
      writeBytesAtomically(args.png, renderLabelSlices(image, label, dataset.labels, [-175, 250]));
      process.stdout.write(`wrote ${args.png}: ${first.image} with its labels\n`);
    }
  },
};
