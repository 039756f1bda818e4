/**
 * `voco grad` for SwinUNETR: one DiceCE training step's logits, loss parts and gradients for given weights and batch,
 * through the same artifacts and trainer as fine-tuning (writeSwinUnetrArtifacts, Trainer.computeGradients).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatShape } from '../../graph/core/shape';
import { LOGITS_OUTPUT, writeSwinUnetrArtifacts } from '../../graph/models/swinunetr/artifacts';
import { IMAGE_INPUT, LABEL_INPUT } from '../../graph/models/swinunetr/model';
import { resolveSwinUnetrOptions } from '../../graph/models/swinunetr/options';
import { SwinUnetrWeightError, WeightSource, importSwinUnetrWeights, inferSwinUnetrOptions, readWeightSource } from '../../graph/models/swinunetr/weights';
import { readSafetensors, writeSafetensors } from '../../io/weights/safetensors';
import { NamedTensor, namedTensor } from '../../io/weights/tensor-map';
import { loadArtifacts } from '../session/trainer';
import { BatchFileError, VocoGradTimings } from '../voco/grad';

export interface SegmentationBatchFile {
  /** [batch, channels, r, r, r]. */
  readonly image: NamedTensor & { data: Float32Array };
  /** [batch, 1, r, r, r], the classes as floats. */
  readonly label: NamedTensor & { data: Float32Array };
}

/** Reads a segmentation batch: `image` [B, Cin, r, r, r] and `label` [B, 1, r, r, r], float32, r a multiple of 32. */
export function readSegmentationBatch(file: string): SegmentationBatchFile {
  const tensors = readSafetensors(file);
  const get = (name: string): NamedTensor & { data: Float32Array } => {
    const t = tensors.get(name);
    if (!t) throw new BatchFileError(file, `has no "${name}" tensor (a SwinUNETR batch holds ${IMAGE_INPUT} and ${LABEL_INPUT})`);
    if (t.dtype !== 'float32' || t.shape.length !== 5) throw new BatchFileError(file, `"${name}" is ${t.dtype}${formatShape(t.shape)}, expected float32 [B, C, r, r, r]`);
    return t as NamedTensor & { data: Float32Array };
  };
  const image = get(IMAGE_INPUT);
  const label = get(LABEL_INPUT);
  const [b, , r] = image.shape;
  if (image.shape[3] !== r || image.shape[4] !== r || formatShape(label.shape) !== formatShape([b, 1, r, r, r])) {
    throw new BatchFileError(file, `image ${formatShape(image.shape)} and label ${formatShape(label.shape)} are not [B, C, r, r, r] and [B, 1, r, r, r]`);
  }
  return { image, label };
}

export interface SwinUnetrGradOptions {
  readonly threads?: number;
  /** The weights already read (see readWeightSource). */
  readonly read?: WeightSource;
}

const LOSS_NAMES = ['loss', 'loss.dice', 'loss.ce'];

/**
 * `logits`, `loss`, `loss.dice`, `loss.ce` and `grad.<name>` (MONAI names) of one step on the batch, for the
 * SwinUNETR the weights describe (feature size and input channels from the patch embedding, classes from `out`),
 * loaded strictly. The artifacts go to a temporary folder, removed after.
 */
export async function computeSwinUnetrGradients(
  weightsFile: string,
  batchFile: string,
  options: SwinUnetrGradOptions = {},
): Promise<{ tensors: NamedTensor[]; timings: VocoGradTimings }> {
  const batch = readSegmentationBatch(batchFile);
  const read = options.read ?? readWeightSource(weightsFile);
  const started = Date.now();
  const inferred = inferSwinUnetrOptions(read.tensors, read.file);
  if (inferred.outChannels === undefined) throw new SwinUnetrWeightError(`${read.file}: has no output layer (out.conv.conv.weight), so no loss can be computed`);
  const [batchSize, channels, roi] = batch.image.shape;
  if (channels !== inferred.inChannels) {
    throw new BatchFileError(batchFile, `image has ${channels} channel(s), the weights in ${read.file} take ${inferred.inChannels}`);
  }
  const o = resolveSwinUnetrOptions({ ...inferred, outChannels: inferred.outChannels, roi, batchSize });
  const { values } = importSwinUnetrWeights(weightsFile, o, { seed: 0, strict: true, read });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-grad-swinunetr-'));
  try {
    writeSwinUnetrArtifacts(dir, o, { logits: true });
    const trainer = await loadArtifacts(dir, { threads: options.threads });
    try {
      for (const name of trainer.parameters.names()) trainer.parameters.set(name, values.get(name)!);
      const sessionsReady = Date.now();
      const step = await trainer.computeGradients({ [IMAGE_INPUT]: batch.image.data, [LABEL_INPUT]: batch.label.data });
      const finished = Date.now();
      const extra = (name: string) => namedTensor(name, 'float32', [...step.extras[name].dims], step.extras[name].data as Float32Array);
      const tensors: NamedTensor[] = [
        extra(LOGITS_OUTPUT),
        namedTensor('loss', 'float32', [1], Float32Array.of(step.loss)),
        ...LOSS_NAMES.slice(1).map((name) => namedTensor(name, 'float32', [1], step.extras[name].data as Float32Array)),
        ...trainer.manifest.parameters
          .filter((p) => p.trainable)
          .map((p) => namedTensor(`grad.${p.name}`, 'float32', p.shape, step.gradients.get(p.name) as Float32Array)),
      ];
      return { tensors, timings: { sessionSeconds: (sessionsReady - started) / 1000, runSeconds: (finished - sessionsReady) / 1000 } };
    } finally {
      await trainer.release();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** computeSwinUnetrGradients, written to `outFile` as safetensors (atomically). */
export async function writeSwinUnetrGradients(weightsFile: string, batchFile: string, outFile: string, options: SwinUnetrGradOptions = {}): Promise<VocoGradTimings> {
  const { tensors, timings } = await computeSwinUnetrGradients(weightsFile, batchFile, options);
  writeSafetensors(outFile, tensors);
  return timings;
}
