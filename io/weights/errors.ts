import { UserError } from '../../common/user-error';

/** A weight file that is not what it claims to be: truncated, corrupt, or in an unsupported variant of its format. */
export class WeightFileError extends UserError {
  constructor(readonly file: string, problem: string) {
    super(`${file}: ${problem}`);
  }
}

/** A pickle that asks for a Python global outside the allow-list; nothing it names is ever run or imported. */
export class RefusedGlobalError extends UserError {
  constructor(readonly file: string, readonly global: string) {
    super(`${file}: refused to load global "${global}" (only tensors, storages and plain containers are allowed)`);
  }
}

/** Loaded weights that do not fit the model: missing, unexpected or mis-shaped keys under strict loading. */
export class StateDictMismatchError extends UserError {}
