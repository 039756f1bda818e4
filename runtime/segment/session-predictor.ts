/**
 * A `WindowPredictor` over an ONNX Runtime session of a forward model [N, Cin, rx, ry, rz] -> [N, Cout, rx, ry, rz].
 * A model whose batch dimension is fixed gets its last, partial sw batch padded with zero windows (their outputs
 * dropped); a symbolic batch dimension takes any count.
 */
import * as ort from 'onnxruntime-node';
import type { WindowPredictor } from './sliding-window';
import { SlidingWindowError, Triple } from './window-plan';

export interface SessionPredictorOptions {
  readonly roi: Triple;
  readonly inChannels: number;
  /** The image input; default the one input not in `feeds`. */
  readonly input?: string;
  /** Default the first output. */
  readonly output?: string;
  /** Further inputs given unchanged to every run (e.g. parameters of a model that takes them as inputs). */
  readonly feeds?: Readonly<Record<string, ort.Tensor>>;
}

export interface SessionPredictor {
  readonly predict: WindowPredictor;
  /** The model's fixed batch size, or undefined when its batch dimension is symbolic. */
  readonly fixedBatch: number | undefined;
}

export function sessionPredictor(session: ort.InferenceSession, options: SessionPredictorOptions): SessionPredictor {
  const fed = new Set(Object.keys(options.feeds ?? {}));
  const open = session.inputNames.filter((name) => !fed.has(name));
  const input = options.input ?? (open.length === 1 ? open[0] : undefined);
  if (input === undefined || !session.inputNames.includes(input)) {
    throw new SlidingWindowError(`cannot tell the image input of the model among its inputs ${open.join(', ')}`);
  }
  const output = options.output ?? session.outputNames[0];
  if (!session.outputNames.includes(output)) throw new SlidingWindowError(`the model has no output ${output}`);
  const meta = session.inputMetadata[session.inputNames.indexOf(input)];
  const shape = meta?.isTensor ? meta.shape : [];
  const fixedBatch = typeof shape[0] === 'number' && shape[0] > 0 ? shape[0] : undefined;
  checkDims(input, shape, [options.inChannels, ...options.roi]);
  const windowValues = options.inChannels * options.roi[0] * options.roi[1] * options.roi[2];
  const predict = batchedPredictor(fixedBatch, windowValues, async (data, rows) => {
    const result = await session.run({ ...options.feeds, [input]: new ort.Tensor('float32', data, [rows, options.inChannels, ...options.roi]) }, [output]);
    return result[output].data as Float32Array;
  });
  return { predict, fixedBatch };
}

/**
 * A predictor over `run`, which computes `rows` windows of `windowValues` values each. With a fixed batch, a
 * partial sw batch is padded with zero windows and their outputs dropped; without one, `run` gets the count.
 */
export function batchedPredictor(
  fixedBatch: number | undefined,
  windowValues: number,
  run: (windows: Float32Array, rows: number) => Promise<Float32Array>,
): WindowPredictor {
  return async (windows, count) => {
    const rows = fixedBatch ?? count;
    if (count > rows) throw new SlidingWindowError(`sw batch of ${count} windows exceeds the model's fixed batch ${rows}`);
    const values = await run(rows === count ? windows : padRows(windows, rows * windowValues), rows);
    return rows === count ? values : values.subarray(0, (values.length / rows) * count);
  };
}

function padRows(windows: Float32Array, length: number): Float32Array {
  const padded = new Float32Array(length);
  padded.set(windows);
  return padded;
}

/** The model's static channel and spatial dims, where it declares them, must be what the windows are. */
function checkDims(input: string, shape: ReadonlyArray<number | string>, expected: number[]): void {
  expected.forEach((want, i) => {
    const got = shape[i + 1];
    if (typeof got === 'number' && got !== want) {
      throw new SlidingWindowError(`model input ${input} is [${shape.join(', ')}], windows are [N, ${expected.join(', ')}]`);
    }
  });
}
