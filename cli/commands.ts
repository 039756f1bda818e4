import type { CommandModule } from 'yargs';

/** Every `voco` sub-command; each lives in its own file under cli/. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [];
