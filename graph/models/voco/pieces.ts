/**
 * The VoCo training step as three models run in pieces (manifest `pieces`, see graph/onnx/manifest.ts): the
 * backbone forward and backward on a few rows at a time, the heads and loss on all rows. The same numbers as the
 * training model, with memory for `cropsPerRun` rows of backbone activations instead of all of them.
 */
import { gradients } from '../../autodiff/backward';
import { Tensor } from '../../core/graph';
import { largestDivisor } from '../../core/shape';
import { ExternalDataOptions } from '../../onnx/external-data';
import { IoTensor, LOSS_OUTPUT, writeGraphModel } from '../../onnx/artifacts';
import { PiecesEntry } from '../../onnx/manifest';
import { gradientName } from '../../optim/optimizer';
import { mul } from '../../ops/elementwise';
import { reduceSum } from '../../ops/reduce';
import { reshape } from '../../ops/shape';
import { EMA_PREFIX, buildBackboneGraph, buildHeadsGraph, embeddingWidth } from './model';
import { VocoModelOptions, stepRows } from './options';

export const BACKBONE_FORWARD_MODEL = 'backbone_forward.onnx';
export const BACKBONE_BACKWARD_MODEL = 'backbone_backward.onnx';
export const HEADS_TRAINING_MODEL = 'heads_training.onnx';
const EMBEDDINGS = 'embeddings';
/** The heads' outputs a pieces model written with `intermediates` adds. */
export const INTERMEDIATE_HEAD_OUTPUTS = ['student', 'teacher', 'logits.intra'];
const EMBEDDINGS_COTANGENT = 'embeddings_cotangent';

const io = (tensor: Tensor, role: IoTensor['role'], name = tensor.name): IoTensor => ({ name, tensor, role });

/**
 * Writes the backbone forward, backbone backward and heads models for steps of `options` into `dir`, the backbone
 * on `largestDivisor(rows, cropsPerRun)` rows; returns their manifest section. Rows are the training model's
 * `images` then `crops`, the order in which the training graph concatenates them. With `intermediates` the
 * forward pieces also output `swin.hidden0..4` and the heads `student`, `teacher` and `logits.intra` (`voco grad`).
 */
export function writeVocoPieces(
  dir: string,
  options: VocoModelOptions,
  cropsPerRun: number,
  externalData?: ExternalDataOptions,
  intermediates = false,
): PiecesEntry {
  const rows = stepRows(options);
  const k = largestDivisor(rows, cropsPerRun);
  const net = buildBackboneGraph(options, k);
  const backboneParams = net.graph.parameters.map((p) => p.tensor);
  const backboneInputs = [...backboneParams.map((t) => io(t, 'parameter')), io(net.crops, 'input'), ...net.masks.map((m) => io(m.tensor, 'input'))];
  const hidden = intermediates ? net.hidden.map((t, i) => io(t, 'output', `swin.hidden${i}`)) : [];
  // The attention outputs are small ([windows, heads, n, d]) and the costliest forward nodes: the forward pieces
  // hand them to the backward, which then runs no Attention node of its own (its gradient needs only q, k, v, y).
  const saved = net.graph.nodes.filter((n) => n.opType === 'Attention').map((n) => n.outputs[0]);
  const backboneForward = writeGraphModel(
    dir,
    BACKBONE_FORWARD_MODEL,
    backboneInputs,
    [io(net.embeddings, 'output', EMBEDDINGS), ...hidden, ...saved.map((t) => io(t, 'output'))],
    { externalData },
  );

  // The vector-Jacobian product as the gradient of <embeddings, cotangent>, so the forward is recomputed inside.
  const width = embeddingWidth(options.featureSize);
  const cotangent = net.graph.input(EMBEDDINGS_COTANGENT, 'float32', [k, width]);
  const pieceLoss = reduceSum(reshape(mul(net.embeddings, cotangent), [k * width]), [0]);
  const backboneGrads = gradients(pieceLoss, backboneParams);
  const backboneBackward = writeGraphModel(
    dir,
    BACKBONE_BACKWARD_MODEL,
    [...backboneInputs, io(cotangent, 'input'), ...saved.map((t) => io(t, 'input'))],
    backboneParams.map((p) => io(backboneGrads.get(p)!, 'gradient', gradientName(p.name))),
    { externalData },
  );

  const heads = buildHeadsGraph(options, 'train');
  const student = heads.graph.parameters.filter((p) => p.trainable).map((p) => p.tensor);
  const teacher = heads.graph.parameters.filter((p) => !p.trainable).map((p) => p.tensor);
  const headGrads = gradients(heads.outputs.loss, [...student, heads.embeddings]);
  const extras = Object.keys(heads.outputs).filter((name) => name.startsWith('loss.') || name.startsWith(EMA_PREFIX));
  if (intermediates) extras.push(...INTERMEDIATE_HEAD_OUTPUTS);
  const headsModel = writeGraphModel(
    dir,
    HEADS_TRAINING_MODEL,
    [
      ...student.map((t) => io(t, 'parameter')),
      ...teacher.map((t) => io(t, 'state')),
      io(heads.embeddings, 'input', EMBEDDINGS),
      io(heads.labels, 'input'),
      ...heads.masks.map((m) => io(m.tensor, 'input')),
    ],
    [
      io(heads.outputs.loss, 'output', LOSS_OUTPUT),
      ...extras.map((name) => io(heads.outputs[name], 'output', name)),
      ...student.map((p) => io(headGrads.get(p)!, 'gradient', gradientName(p.name))),
      io(headGrads.get(heads.embeddings)!, 'output', gradientName(EMBEDDINGS)),
    ],
    { externalData },
  );
  return {
    cropsPerRun: k,
    rows,
    rowSources: ['images', 'crops'],
    rowsInput: net.crops.name,
    cotangent: EMBEDDINGS_COTANGENT,
    embeddings: EMBEDDINGS,
    embeddingsGradient: gradientName(EMBEDDINGS),
    saved: saved.map((t) => t.name),
    models: { backboneForward, backboneBackward, heads: headsModel },
  };
}
