import * as path from 'path';

/** The shared reference fixtures (../shared/reference), beside the repository here and in CI. */
export const REFERENCE = path.resolve(__dirname, '../../../shared/reference');
