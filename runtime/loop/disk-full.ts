import { UserError } from '../../common/user-error';

/** The disk filled up while the run wrote something: the run stopped, its last complete checkpoint stays whole. */
export class DiskFullError extends UserError {}

const FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);

/** Whether `error` is a write refused for lack of space (also when it crossed a worker thread as a plain Error). */
export function isDiskFull(error: unknown): boolean {
  const e = error as NodeJS.ErrnoException | undefined;
  return FULL_CODES.has(e?.code ?? '') || /\b(ENOSPC|EDQUOT)\b/.test(e?.message ?? '');
}
