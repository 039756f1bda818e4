/**
 * Execution providers for onnxruntime-node sessions. `cpu` and `webgpu` ship with the npm package; `cuda` needs
 * provider libraries that the package downloads only when installed with ONNXRUNTIME_NODE_INSTALL=cuda12.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { UserError } from '../../common/user-error';

export const EXECUTION_PROVIDERS = ['cpu', 'cuda', 'webgpu'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

export interface ProviderOptions {
  readonly provider?: ExecutionProvider;
  /** GPU index for `cuda` (ignored by the others). */
  readonly deviceId?: number;
  /** Intra-op threads for CPU kernels; ONNX Runtime picks (one per core) when omitted. */
  readonly threads?: number;
}

/** An execution provider that is not installed here or that failed to start; the message says what to do. */
export class ProviderUnavailableError extends UserError {
  constructor(readonly provider: string, problem: string) {
    super(`execution provider ${provider}: ${problem}`);
  }
}

const FIX: Record<Exclude<ExecutionProvider, 'cpu'>, string> = {
  cuda:
    'it needs an NVIDIA GPU with a CUDA 12 driver, CUDA 12 and cuDNN 9 libraries, and onnxruntime-node installed with ' +
    'its CUDA binaries: run `ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci` on that host (or use --ep cpu)',
  webgpu: 'it needs a Vulkan-capable GPU and driver (libvulkan.so.1 and an ICD for the GPU); use --ep cpu otherwise',
};

export function isExecutionProvider(name: string): name is ExecutionProvider {
  return (EXECUTION_PROVIDERS as readonly string[]).includes(name);
}

/**
 * On the CPU, ONNX Runtime's memory arena keeps the buffers of one run for the next. Without it every large tensor
 * of every run is fresh memory from the kernel: a quarter of the CPU time went to page faults, and steps took 1.4x
 * (VoCo tiny, roi 64, pieces of 2 crops: 27.0 s against 18.7 s) to 1.6x (SwinUNETR tiny, roi 96, 4 crops: 48.9 s
 * against 29.8 s) as long; the arena costs 0.1 to 0.7 GiB more at peak (docs/performance.md, "Memory arena").
 * The memory pattern (one block planned for a whole run) stays off. Denormals are flushed to zero: softmax over the
 * -100-masked shifted windows yields ~1e-44 probabilities, which cost x86 cores ~100x per operation
 * (docs/performance.md, "VoCo training step").
 */
const CPU_OPTIONS: ort.InferenceSession.SessionOptions = {
  enableCpuMemArena: true,
  enableMemPattern: false,
  extra: { session: { set_denormal_as_zero: '1' } },
};

/**
 * With VOCO_ORT_PROFILE=PREFIX every session writes ONNX Runtime's per-node profile to PREFIX_<date>.json when it is
 * released (read them with `npx tsx bench/ort-profile.ts FILE...`).
 */
function profiling(): ort.InferenceSession.SessionOptions {
  const prefix = process.env.VOCO_ORT_PROFILE;
  return prefix ? { enableProfiling: true, profileFilePrefix: prefix } : {};
}

/** Session options for `options.provider` (default `cpu`), all graph optimisations on. */
export function sessionOptions(options: ProviderOptions = {}): ort.InferenceSession.SessionOptions {
  const provider = options.provider ?? 'cpu';
  const threads = options.threads !== undefined ? { intraOpNumThreads: options.threads, interOpNumThreads: 1 } : {};
  const ep: ort.InferenceSession.ExecutionProviderConfig =
    provider === 'cuda' ? { name: 'cuda', deviceId: options.deviceId ?? 0 } : provider === 'webgpu' ? { name: 'webgpu' } : { name: 'cpu' };
  return { executionProviders: [ep], graphOptimizationLevel: 'all', ...threads, ...(provider === 'cpu' ? CPU_OPTIONS : {}), ...profiling() };
}

/**
 * Opens `model` (a path, so external data beside it is found, or the bytes) on the requested provider. A provider
 * that is missing or fails to start is a ProviderUnavailableError naming the fix, never a silent CPU fallback.
 */
export async function createSession(
  model: string | Uint8Array,
  options: ProviderOptions = {},
  /** Session options on top of the provider's (e.g. `enableCpuMemArena: false`). */
  overrides: ort.InferenceSession.SessionOptions = {},
): Promise<ort.InferenceSession> {
  const provider = options.provider ?? 'cpu';
  if (!isExecutionProvider(provider)) {
    throw new ProviderUnavailableError(provider, `unknown; choose one of ${EXECUTION_PROVIDERS.join(', ')}`);
  }
  if (options.deviceId !== undefined && !(Number.isInteger(options.deviceId) && options.deviceId >= 0)) {
    throw new ProviderUnavailableError(provider, `device id ${options.deviceId} is not a whole number >= 0`);
  }
  if (provider === 'cuda' && !cudaLibrariesInstalled()) {
    throw new ProviderUnavailableError('cuda', `onnxruntime-node's CUDA provider libraries are not installed; ${FIX.cuda}`);
  }
  try {
    const opts = { ...sessionOptions(options), ...overrides };
    return await (typeof model === 'string' ? ort.InferenceSession.create(model, opts) : ort.InferenceSession.create(model, opts));
  } catch (error) {
    if (provider === 'cpu') throw error;
    const reason = (error as Error).message.split('\n')[0];
    throw new ProviderUnavailableError(provider, `failed to initialise (${reason}); ${FIX[provider]}`);
  }
}

/** Whether the CUDA provider's shared libraries sit beside onnxruntime-node's binding. */
function cudaLibrariesInstalled(): boolean {
  const binding = path.join(path.dirname(require.resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch);
  return ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'].every((f) => fs.existsSync(path.join(binding, f)));
}
