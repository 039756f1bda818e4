/**
 * A training step computed in pieces (manifest `pieces`): the backbone forward on a few rows at a time, the heads
 * model on all rows, the backbone backward per piece (fed the tensors its forward piece saved, manifest `saved`)
 * with the pieces' gradients summed. Gives what one run of the training model gives (loss, extras, `<param>_grad`
 * of every trainable parameter) with a fraction of its memory.
 */
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { size } from '../../graph/core/shape';
import { IoEntry, ModelEntry, PiecesEntry } from '../../graph/onnx/manifest';
import { LOSS_OUTPUT } from '../../graph/onnx/artifacts';
import { ProviderOptions, createSession } from './providers';
import { rowSlice } from './tensor-store';

/** Feeds for `model`: parameters and state from the trainer's stores, every other input from `other`. */
export type Feeder = (model: ModelEntry, other: (io: IoEntry) => ort.Tensor) => Record<string, ort.Tensor>;

type Outputs = ort.InferenceSession.OnnxValueMapType;

export class PiecewiseStep {
  private constructor(
    private readonly pieces: PiecesEntry,
    private readonly forward: ort.InferenceSession,
    private readonly backward: ort.InferenceSession,
    private readonly heads: ort.InferenceSession,
  ) {}

  /** Opens the three piece models of the artifacts in `dir`. */
  static async open(dir: string, pieces: PiecesEntry, options: ProviderOptions): Promise<PiecewiseStep> {
    const open = (m: ModelEntry) => createSession(path.join(dir, m.file), options);
    const { backboneForward, backboneBackward, heads } = pieces.models;
    const [f, b, h] = await Promise.all([open(backboneForward), open(backboneBackward), open(heads)]);
    return new PiecewiseStep(pieces, f, b, h);
  }

  /**
   * The training model's outputs for one batch: `loss`, `extras` (from the heads model, and `embeddings` and any
   * other forward output gathered from the forward pieces) and every trainable parameter's gradient. `input(name)` is the training model's batch input.
   */
  async run(feeds: Feeder, input: (name: string) => ort.Tensor, extras: readonly string[]): Promise<Outputs> {
    const p = this.pieces;
    const k = p.cropsPerRun;
    const count = p.rows / k;
    const rows = new RowSource(p.rowSources.map(input));
    const rowsOf = (t: ort.Tensor, i: number) => rowSlice(t, i * k, (i + 1) * k);
    const savedNames = p.saved ?? [];
    // Per piece, the forward outputs its backward reads (the rest is gathered below and not kept).
    const saved: Record<string, ort.Tensor>[] = [];
    const pieceFeeds = (model: ModelEntry, i: number, cotangent?: ort.Tensor) =>
      feeds(model, (io) => {
        if (io.name === p.rowsInput) return rows.slice(i * k, (i + 1) * k);
        if (io.name === p.cotangent) return rowsOf(cotangent!, i);
        return savedNames.includes(io.name) ? saved[i][io.name] : rowsOf(input(io.name), i);
      });

    // Every other forward output (the embeddings, and any intermediates) is gathered over the pieces into [rows, ...].
    const gathered: Record<string, ort.Tensor> = {};
    for (const o of p.models.backboneForward.outputs) {
      if (savedNames.includes(o.name)) continue;
      gathered[o.name] = new ort.Tensor('float32', new Float32Array(p.rows * size(o.shape.slice(1))), [p.rows, ...o.shape.slice(1)]);
    }
    for (let i = 0; i < count; i++) {
      const out = await this.forward.run(pieceFeeds(p.models.backboneForward, i));
      for (const [name, all] of Object.entries(gathered)) (all.data as Float32Array).set(out[name].data as Float32Array, (i * all.data.length) / count);
      saved.push(Object.fromEntries(savedNames.map((name) => [name, out[name]])));
    }
    const embeddingTensor = gathered[p.embeddings];
    const head = await this.heads.run(feeds(p.models.heads, (io) => (io.name === p.embeddings ? embeddingTensor : input(io.name))));

    const sums: Record<string, Float32Array> = {};
    for (let i = 0; i < count; i++) {
      const out = await this.backward.run(pieceFeeds(p.models.backboneBackward, i, head[p.embeddingsGradient]));
      for (const o of p.models.backboneBackward.outputs) {
        const g = out[o.name].data as Float32Array;
        const sum = sums[o.name];
        // The first piece's output buffer is ours to keep: it becomes the sum.
        if (!sum) sums[o.name] = g;
        else for (let j = 0; j < g.length; j++) sum[j] += g[j];
      }
    }

    const result: Record<string, ort.Tensor> = { [LOSS_OUTPUT]: head[LOSS_OUTPUT] };
    for (const name of extras) result[name] = gathered[name] ?? head[name];
    for (const o of p.models.heads.outputs) if (o.role === 'gradient') result[o.name] = head[o.name];
    for (const o of p.models.backboneBackward.outputs) result[o.name] = new ort.Tensor('float32', sums[o.name], [...o.shape]);
    return result;
  }

  release(): Promise<unknown> {
    return Promise.all([this.forward.release(), this.backward.release(), this.heads.release()]);
  }
}

/** Float32 tensors [n_i, ...] read as one tensor concatenated along the first axis, without copying where it can. */
class RowSource {
  private readonly starts: number[] = [];
  private readonly total: number;

  constructor(private readonly parts: readonly ort.Tensor[]) {
    let at = 0;
    for (const t of parts) {
      this.starts.push(at);
      at += t.dims[0];
    }
    this.total = at;
  }

  slice(from: number, to: number): ort.Tensor {
    if (to > this.total) throw new Error(`rows ${from}..${to} of ${this.total}`);
    const inside = this.parts.findIndex((t, i) => from >= this.starts[i] && to <= this.starts[i] + t.dims[0]);
    if (inside >= 0) return rowSlice(this.parts[inside], from - this.starts[inside], to - this.starts[inside]);
    const tail = this.parts[0].dims.slice(1);
    const per = size(tail);
    const out = new Float32Array((to - from) * per);
    this.parts.forEach((t, i) => {
      const a = Math.max(from, this.starts[i]);
      const b = Math.min(to, this.starts[i] + t.dims[0]);
      if (a < b) out.set((t.data as Float32Array).subarray((a - this.starts[i]) * per, (b - this.starts[i]) * per), (a - from) * per);
    });
    return new ort.Tensor('float32', out, [to - from, ...tail]);
  }
}
