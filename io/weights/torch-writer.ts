/**
 * Writes weights as PyTorch 1.6+ `torch.save` does: a stored zip archive with `archive/data.pkl` (protocol 2),
 * `archive/byteorder`, one `archive/data/<i>` entry per tensor (64-byte aligned) and `archive/version`. By default the
 * state dict is wrapped as upstream VoCo saves it, `{"state_dict": OrderedDict(...)}`.
 */
import { writeFileAtomically } from '../../common/atomic-file';
import { ORDERED_DICT, PickleValue, pickle } from './pickle-writer';
import { NamedTensor, WeightDType, numel, tensorBytes } from './tensor-map';
import { STORAGE_DTYPES } from './torch-reader';
import { ZipWriteEntry, writeStoredZip } from './zip-archive';

const STORAGE_OF_DTYPE = new Map(Object.entries(STORAGE_DTYPES).map(([storage, dtype]) => [dtype, storage] as [WeightDType, string]));

function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  for (let i = shape.length - 1, s = 1; i >= 0; s *= shape[i], i--) strides[i] = s;
  return strides;
}

/** `torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())` for storage `key`. */
function rebuildTensor(t: NamedTensor, key: string): PickleValue {
  const storage = { persistentId: { tuple: ['storage', { global: ['torch', STORAGE_OF_DTYPE.get(t.dtype) as string] }, key, 'cpu', numel(t.shape)] } } as const;
  return {
    call: { global: ['torch._utils', '_rebuild_tensor_v2'] },
    args: [storage, 0, { tuple: t.shape }, { tuple: contiguousStrides(t.shape) }, false, { call: ORDERED_DICT, args: [] }],
  };
}

export interface TorchWriteOptions {
  /** The key the state dict is stored under; null stores the bare state dict. Default "state_dict". */
  readonly wrapper?: string | null;
}

/** Writes `tensors` (under their names, in order) as a checkpoint that `torch.load` reads unchanged. */
export function writeTorchCheckpoint(file: string, tensors: Iterable<NamedTensor>, options: TorchWriteOptions = {}): void {
  const list = [...tensors];
  const stateDict: PickleValue = { dict: list.map((t, i) => [t.name, rebuildTensor(t, String(i))] as const), ordered: true };
  const wrapper = options.wrapper === undefined ? 'state_dict' : options.wrapper;
  const root: PickleValue = wrapper === null ? stateDict : { dict: [[wrapper, stateDict]] };
  const encoder = new TextEncoder();
  function* entries(): Generator<ZipWriteEntry> {
    yield { name: 'archive/data.pkl', data: pickle(root) };
    yield { name: 'archive/byteorder', data: encoder.encode('little') };
    for (let i = 0; i < list.length; i++) yield { name: `archive/data/${i}`, data: tensorBytes(list[i]) };
    yield { name: 'archive/version', data: encoder.encode('3\n') };
  }
  writeFileAtomically(file, (fd) => writeStoredZip(fd, entries()));
}
