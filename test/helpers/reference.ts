import * as fs from 'fs';
import * as path from 'path';

/**
 * The shared reference fixtures: ../shared/reference beside the repository (here and in CI), or the folder named
 * by VOCO_REFERENCE.
 */
export const REFERENCE = path.resolve(process.env.VOCO_REFERENCE ?? path.join(__dirname, '../../../shared/reference'));

export const HAVE_REFERENCE = fs.existsSync(REFERENCE);

const MISSING = `the reference fixtures are missing: no ${REFERENCE} (check out ../shared, or set VOCO_REFERENCE)`;

/**
 * `test` for a test that reads the reference fixtures. Without them it is skipped, and its name says in one line
 * why, instead of the test failing deep inside on the first file it opens.
 */
export const referenceTest = (name: string, fn: jest.ProvidesCallback, timeout?: number): void =>
  HAVE_REFERENCE ? test(name, fn, timeout) : test.skip(`${name} — skipped: ${MISSING}`, fn, timeout);

/** `describe` for a group whose tests all read the reference fixtures (see referenceTest). */
export const referenceDescribe = (name: string, fn: () => void): void =>
  HAVE_REFERENCE ? describe(name, fn) : describe.skip(`${name} — skipped: ${MISSING}`, fn);
