#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commands } from './commands';
import { UserError } from '../common/user-error';

async function main(): Promise<void> {
  let parser = yargs(hideBin(process.argv))
    .scriptName('voco')
    .strict()
    .demandCommand(1, 'Name a command; `voco --help` lists them.')
    .recommendCommands()
    .help()
    .fail((message, error) => {
      throw error ?? new UserError(message);
    });
  for (const command of commands) parser = parser.command(command);
  await parser.parseAsync();
}

main().catch((error: unknown) => {
  if (error instanceof UserError) {
    process.stderr.write(`voco: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
});
