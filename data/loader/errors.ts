import { UserError } from '../../common/user-error';

/** A source file could not be read or preprocessed while training ran with `onBadFile: 'fail'`. */
export class BadSourceFileError extends UserError {}

/** Every source file of the dataset is bad: nothing is left to train on. */
export class NoUsableFileError extends UserError {}

/** A saved data cursor does not fit the dataset it is resumed with (the dataset changed since the checkpoint). */
export class CursorMismatchError extends UserError {}

/** A loader worker died (uncaught error, out of memory, killed): the loader stops instead of waiting forever. */
export class LoaderWorkerCrashError extends Error {}

/** `next()` was called on, or was pending when, the loader was closed. */
export class LoaderClosedError extends Error {}
