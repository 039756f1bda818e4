import { UserError } from '../../common/user-error';

/** A volume file that cannot be used: not NIfTI, truncated, corrupt, wrong dimensionality, bad voxel values. */
export class BadVolumeError extends UserError {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}
