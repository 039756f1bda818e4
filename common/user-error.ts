/**
 * Errors caused by what the user asked for or gave us (a bad file, a bad option). The CLI prints them as one
 * line without a stack trace; subclass it per kind of mistake so callers can tell them apart.
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
