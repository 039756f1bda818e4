import type { Argv, CommandModule } from 'yargs';
import { UserError } from '../common/user-error';
import { isSwinUnetrStateDict, readWeightSource } from '../graph/models/swinunetr/weights';
import { writeSwinUnetrGradients } from '../runtime/swinunetr/grad';
import { DEFAULT_CROPS_PER_RUN, writeVocoGradients } from '../runtime/voco/grad';

/** A `voco grad` option that cannot be used. */
export class GradOptionError extends UserError {}

interface GradArgs {
  weights: string;
  batch: string;
  out: string;
  intermediates: boolean;
  threads?: number;
  'crops-per-run': number;
}

/**
 * `voco grad`: one training-graph run on given weights and batch, for parity checks against PyTorch. The model is
 * the weights': SwinUNETR when they hold decoders or an `out` layer (batch: image, label), else VoCo.
 */
export const gradCommand: CommandModule<object, GradArgs> = {
  command: 'grad',
  describe: 'run the training graph once and write loss parts and gradients (VoCo: feature dropout off, embeddings, EMA teacher; SwinUNETR: logits)',
  builder: (yargs: Argv) =>
    yargs
      .option('weights', { type: 'string', demandOption: true, describe: 'VoCo or SwinUNETR weights: safetensors, training checkpoint (.ckpt) or PyTorch .pt' })
      .option('batch', { type: 'string', demandOption: true, describe: 'safetensors with images, crops and labels (VoCo) or image and label (SwinUNETR)' })
      .option('out', { type: 'string', demandOption: true, describe: 'safetensors file to write' })
      .option('intermediates', { type: 'boolean', default: false, describe: 'VoCo: also write swin.hidden0..4, student, teacher, logits.intra<i>' })
      .option('crops-per-run', { type: 'number', default: DEFAULT_CROPS_PER_RUN, describe: 'VoCo: crops per backbone run (memory grows with it)' })
      .option('threads', { type: 'number', describe: 'CPU threads (default: one per core)' }) as unknown as Argv<GradArgs>,
  handler: async (args) => {
    if (args.threads !== undefined && !(Number.isInteger(args.threads) && args.threads >= 1)) {
      throw new GradOptionError(`--threads must be a whole number >= 1, got ${args.threads}`);
    }
    if (!(Number.isInteger(args['crops-per-run']) && args['crops-per-run'] >= 1)) {
      throw new GradOptionError(`--crops-per-run must be a whole number >= 1, got ${args['crops-per-run']}`);
    }
    const read = readWeightSource(args.weights);
    if (isSwinUnetrStateDict(read.tensors)) {
      if (args.intermediates) throw new GradOptionError('--intermediates applies to VoCo weights; SwinUNETR writes logits, loss parts and gradients');
      const t = await writeSwinUnetrGradients(args.weights, args.batch, args.out, { threads: args.threads, read });
      process.stdout.write(`wrote ${args.out} (graphs and sessions ${t.sessionSeconds.toFixed(1)} s, runs ${t.runSeconds.toFixed(1)} s)\n`);
      return;
    }
    const t = await writeVocoGradients(args.weights, args.batch, args.out, {
      intermediates: args.intermediates,
      threads: args.threads,
      cropsPerRun: args['crops-per-run'],
    });
    process.stdout.write(`wrote ${args.out} (graphs and sessions ${t.sessionSeconds.toFixed(1)} s, runs ${t.runSeconds.toFixed(1)} s)\n`);
  },
};
