import { VocoModelOptions, stepRows } from './options';
import { Graph, Tensor } from '../../core/graph';
import { Shape } from '../../core/shape';
import { add, mul } from '../../ops/elementwise';
import { detach, reshape } from '../../ops/shape';
import { concat } from '../../ops/slice';
import { dropout } from '../../nn/dropout';
import { RelativePositionBuffer, SwinConfig, VOCO_SWIN } from '../swin';
import { swinUnetrEncoder } from '../swinunetr-encoder';
import { fixedLinear, parameterLinear, poolAndConcat, projectionHead } from './head';
import { vocoLoss } from './loss';

export const swinConfig = (o: Pick<VocoModelOptions, 'featureSize' | 'dropPathRate'>): SwinConfig => ({
  ...VOCO_SWIN,
  featureSize: o.featureSize,
  dropPathRate: o.dropPathRate,
});

/** Width of the pooled embedding: fs + fs + 2fs + 4fs + 16fs. */
export const embeddingWidth = (featureSize: number): number => 24 * featureSize;

/** A keep-mask input the runtime draws each step: Bernoulli(1 - p) in {0, 1}, float32. */
export interface RandomMaskInput {
  readonly tensor: Tensor;
  readonly p: number;
}

export interface BackboneOutput {
  /** The five SwinViT outputs (normalised), channels first. */
  readonly hidden: readonly Tensor[];
  /** [N, 24 * fs]: pooled encoder outputs, concatenated. */
  readonly embeddings: Tensor;
  readonly buffers: readonly RelativePositionBuffer[];
}

/** Upstream `Swin` (scope `backbone`): SwinViT, the five UNETR encoders, pooling. x [N, 1, roi, roi, roi]. */
export function backbone(x: Tensor, config: SwinConfig, masks: RandomMaskInput[]): BackboneOutput {
  const g = x.graph;
  return g.scope('backbone', () => {
    const maskSource = (name: string, shape: Shape, p: number): Tensor => {
      const tensor = g.input(name, 'float32', shape);
      masks.push({ tensor, p });
      return tensor;
    };
    const { hidden, encoders, buffers } = swinUnetrEncoder(x, config, maskSource);
    return { hidden, embeddings: poolAndConcat(encoders), buffers };
  });
}

export type VocoMode = 'train' | 'eval';

export interface VocoGraph {
  readonly graph: Graph;
  readonly options: VocoModelOptions;
  readonly mode: VocoMode;
  readonly inputs: {
    /** [batch*sw, 1, roi, roi, roi] random crops. */
    readonly images: Tensor;
    /** [batch*bases, 1, roi, roi, roi] base crops. */
    readonly crops: Tensor;
    /** [batch, sw, bases] overlap labels. */
    readonly labels: Tensor;
    /** Feature-dropout and drop-path keep masks, drawn by the runtime (none when their rates are 0). */
    readonly masks: readonly RandomMaskInput[];
  };
  /**
   * Named outputs: `loss`, `loss.intra`, `loss.inter`, `loss.reg` (scalars), `embeddings`, `student`, `teacher`,
   * `logits.intra`, `swin.hidden0..4`, and in training `ema.<teacher key>` (the teacher after the EMA step).
   */
  readonly outputs: Readonly<Record<string, Tensor>>;
  /** Every parameter that gets a gradient (backbone and student). */
  readonly trainable: readonly Tensor[];
  /** Teacher head weights: state, replaced by the `ema.*` outputs after a training step. */
  readonly teacher: readonly Tensor[];
  readonly buffers: readonly RelativePositionBuffer[];
}

export const EMA_PREFIX = 'ema.';
export const FEATURE_DROPOUT_MASK = 'feature_dropout_mask';

/**
 * The whole VoCo pre-training graph (upstream `VoCoHead.forward`). In `train` mode the teacher is first updated
 * by EMA from the student (teacher = m * teacher + (1 - m) * student) and the feature-dropout mask is an input;
 * in `eval` mode the teacher is used as it is and there is no dropout.
 */
export function buildVocoGraph(options: VocoModelOptions, mode: VocoMode = 'train'): VocoGraph {
  const g = new Graph();
  const o = options;
  const shape = (n: number) => [n, 1, o.roi, o.roi, o.roi];
  const images = g.input('images', 'float32', shape(o.batchSize * o.swBatchSize));
  const crops = g.input('crops', 'float32', shape(o.batchSize * o.baseCrops));
  const labels = g.input('labels', 'float32', [o.batchSize, o.swBatchSize, o.baseCrops]);
  const masks: RandomMaskInput[] = [];
  const net = backbone(concat([images, crops], 0), swinConfig({ ...o, dropPathRate: mode === 'train' ? o.dropPathRate : 0 }), masks);
  const heads = headsAndLoss(net.embeddings, labels, o, mode, masks);
  return {
    graph: g,
    options: o,
    mode,
    inputs: { images, crops, labels, masks },
    outputs: { ...heads, embeddings: net.embeddings, ...Object.fromEntries(net.hidden.map((h, i) => [`swin.hidden${i}`, h])) },
    trainable: g.parameters.filter((p) => p.trainable).map((p) => p.tensor),
    teacher: g.parameters.filter((p) => !p.trainable).map((p) => p.tensor),
    buffers: net.buffers,
  };
}

/**
 * Feature dropout, the student and (EMA-updated in training) teacher heads and the loss on embeddings [N, C]:
 * outputs `loss`, `loss.intra`, `loss.inter`, `loss.reg`, `student`, `teacher`, `logits.intra` and, in training,
 * `ema.<teacher parameter>`.
 */
function headsAndLoss(embeddings: Tensor, labels: Tensor, o: VocoModelOptions, mode: VocoMode, masks: RandomMaskInput[]): Record<string, Tensor> {
  const g = embeddings.graph;
  let studentInput = embeddings;
  if (mode === 'train' && o.featureDropout > 0) {
    const mask = g.input(FEATURE_DROPOUT_MASK, 'float32', [embeddings.shape[0], 1]);
    masks.push({ tensor: mask, p: o.featureDropout });
    studentInput = dropout(embeddings, mask, o.featureDropout);
  }
  const student = g.scope('student', () => projectionHead(studentInput, parameterLinear));
  const studentWeights = headWeights(g, 'student.');
  const teacherWeights = new Map<string, Tensor>();
  const ema: Record<string, Tensor> = {};
  for (const p of g.parameters.filter((q) => q.tensor.name.startsWith('student.'))) {
    const key = p.tensor.name.slice('student.'.length);
    const t = g.scope('teacher', () => g.parameter(key, p.tensor.dtype, p.tensor.shape, p.init, false));
    if (mode === 'train') {
      // Upstream updates `.data` under no_grad: no gradient reaches the student through the teacher.
      const updated = add(mul(t, Math.fround(o.emaMomentum)), mul(detach(studentWeights.get(key)!), Math.fround(1 - o.emaMomentum)));
      ema[`${EMA_PREFIX}${t.name}`] = updated;
      teacherWeights.set(key, updated);
    } else {
      teacherWeights.set(key, t);
    }
  }
  const teacher = g.scope('teacher', () => projectionHead(detach(embeddings), fixedLinear(teacherWeights)));
  const parts = vocoLoss(student, teacher, labels, { batch: o.batchSize, sw: o.swBatchSize, bases: o.baseCrops });
  return {
    loss: parts.total,
    'loss.intra': parts.intra,
    'loss.inter': parts.inter,
    'loss.reg': parts.reg,
    student,
    teacher,
    'logits.intra': parts.logitsIntra,
    ...ema,
  };
}

/** The backbone alone on `rows` crops, for running a step in pieces (see voco-grad.ts and voco-pieces.ts). */
export interface BackboneGraph {
  readonly graph: Graph;
  readonly crops: Tensor;
  readonly embeddings: Tensor;
  readonly hidden: readonly Tensor[];
  /** Drop-path keep masks [rows, 1, 1, 1, 1], named as in the whole graph (none when the rate is 0). */
  readonly masks: readonly RandomMaskInput[];
}

export function buildBackboneGraph(options: Pick<VocoModelOptions, 'featureSize' | 'roi'> & { readonly dropPathRate?: number }, rows: number): BackboneGraph {
  const g = new Graph();
  const crops = g.input('crops', 'float32', [rows, 1, options.roi, options.roi, options.roi]);
  const masks: RandomMaskInput[] = [];
  const net = backbone(crops, swinConfig({ featureSize: options.featureSize, dropPathRate: options.dropPathRate ?? 0 }), masks);
  return { graph: g, crops, embeddings: net.embeddings, hidden: net.hidden, masks };
}

/**
 * Heads and loss on embeddings fed as an input [N, 24 * fs], for running a step in pieces. In `train` mode with
 * feature dropout the keep mask `feature_dropout_mask` [N, 1] is an input, as in the whole graph.
 */
export interface HeadsGraph {
  readonly graph: Graph;
  readonly embeddings: Tensor;
  readonly labels: Tensor;
  readonly outputs: Readonly<Record<string, Tensor>>;
  readonly masks: readonly RandomMaskInput[];
}

export function buildHeadsGraph(options: VocoModelOptions, mode: VocoMode = 'train'): HeadsGraph {
  const g = new Graph();
  const o = options;
  const rows = stepRows(o);
  const embeddings = g.input('embeddings', 'float32', [rows, embeddingWidth(o.featureSize)]);
  const labels = g.input('labels', 'float32', [o.batchSize, o.swBatchSize, o.baseCrops]);
  const masks: RandomMaskInput[] = [];
  return { graph: g, embeddings, labels, outputs: headsAndLoss(embeddings, labels, o, mode, masks), masks };
}

/** The parameters under `prefix`, keyed by the rest of their names. */
function headWeights(g: Graph, prefix: string): Map<string, Tensor> {
  return new Map(g.parameters.filter((p) => p.tensor.name.startsWith(prefix)).map((p) => [p.tensor.name.slice(prefix.length), p.tensor]));
}

export interface EncoderGraph {
  readonly graph: Graph;
  readonly crops: Tensor;
  /** `hidden0..4` (SwinViT stage outputs) and `embedding` [N, 24 * fs]. */
  readonly outputs: Readonly<Record<string, Tensor>>;
}

/** The backbone alone for downstream use: crops [batch, 1, roi, roi, roi] in, stage features and embedding out. */
export function buildEncoderGraph(options: Pick<VocoModelOptions, 'featureSize' | 'roi'>, batch: number): EncoderGraph {
  // Inference: no drop path, whatever the training options say.
  const net = buildBackboneGraph({ featureSize: options.featureSize, roi: options.roi }, batch);
  const outputs: Record<string, Tensor> = { ...Object.fromEntries(net.hidden.map((h, i) => [`hidden${i}`, h])), embedding: net.embeddings };
  return { graph: net.graph, crops: net.crops, outputs };
}

/** Reshapes a scalar to [1], the shape upstream's loss tensors have. */
export const asUpstreamScalar = (t: Tensor): Tensor => (t.rank === 0 ? reshape(t, [1]) : t);
