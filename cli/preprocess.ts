import * as fs from 'fs';
import * as path from 'path';
import type { Argv, CommandModule } from 'yargs';
import { UserError } from '../common/user-error';
import { loadVolume } from '../data/nifti/read';
import { writeNifti } from '../data/nifti/write';
import { FAMILIES, Family, preprocess } from '../data/pipeline';
import { writeVocoPicture } from '../data/render/voco-crops';
import type { Volume } from '../data/volume';

export interface PreprocessArgs {
  file: string;
  family: Family;
  resize: boolean;
  out: string;
  png?: string;
}

export function preprocessOptions<T>(yargs: Argv<T>): Argv<T & PreprocessArgs> {
  return yargs
    .positional('file', { type: 'string', demandOption: true, describe: 'CT volume (.nii or .nii.gz, in HU)' })
    .option('family', { choices: FAMILIES, demandOption: true, describe: 'body region: spacing and HU window' })
    .option('resize', { type: 'boolean', default: false, describe: 'resize to 192x192x64 after the pad (head-and-neck / unlabelled-abdomen variant)' })
    .option('out', { type: 'string', demandOption: true, describe: 'output NIfTI (.nii or .nii.gz)' })
    .option('png', { type: 'string', describe: 'also write a PNG of a VoCo sample of the result: region mid-slice, crops, position labels' }) as unknown as Argv<T & PreprocessArgs>;
}

/** Loads, preprocesses and writes one volume; returns the preprocessed volume for further outputs. */
export function preprocessFile(args: PreprocessArgs): Volume {
  const outDir = path.dirname(path.resolve(args.out));
  if (!fs.existsSync(outDir)) throw new UserError(`output folder ${outDir} does not exist`);
  const { volume } = loadVolume(args.file);
  const result = preprocess(volume, args.family, { resize: args.resize, source: args.file });
  writeNifti(args.out, result);
  const spacing = [0, 1, 2].map((j) => Math.hypot(result.affine[j], result.affine[4 + j], result.affine[8 + j]).toFixed(3));
  process.stdout.write(`wrote ${args.out}: ${result.shape.join('x')} voxels of ${spacing.join('x')} mm\n`);
  return result;
}

export const preprocessCommand: CommandModule<object, PreprocessArgs> = {
  command: 'preprocess <file>',
  describe: 'Write the volume as the model sees it: MONAI-equal preprocessing up to the pad to 64 (or the resize)',
  builder: (yargs) => preprocessOptions(yargs),
  handler: (args) => {
    const pngDir = args.png === undefined ? undefined : path.dirname(path.resolve(args.png));
    if (pngDir !== undefined && !fs.existsSync(pngDir)) throw new UserError(`output folder ${pngDir} does not exist`);
    const volume = preprocessFile(args);
    if (args.png !== undefined) {
      writeVocoPicture(args.png, volume, 0);
      process.stdout.write(`wrote ${args.png}: a VoCo sample (seed 0) of the preprocessed volume\n`);
    }
  },
};
