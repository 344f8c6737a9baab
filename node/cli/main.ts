import '../polyfills.js';
import { Command, CommanderError } from 'commander';
import { registerAttestationCommand } from './attestation-command.js';
import { registerAuditCommand } from './audit-command.js';
import { registerDevCommand } from './dev-command.js';
import { registerDevnetCommand } from './devnet-command.js';
import { registerGenesisCommand } from './genesis-command.js';
import { registerGovCommands } from './gov-command.js';
import { registerNodeCommand } from './node-command.js';
import { CliError } from './errors.js';
import { registerKeysCommand } from './keys-command.js';
import { registerMeasureCommands } from './measure-commands.js';
import { registerRpcCommands } from './rpc-commands.js';
import { registerProofCommands } from './proof-commands.js';
import { registerLedgerCommands } from './ledger-command.js';

function buildProgram(): Command {
  const program = new Command();
  program
    .name('cloister')
    .description('Cloister: a consortium blockchain whose contracts run only inside attested enclaves')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    // Each command's options belong to it: `devnet stop --data DIR` is stop's --data, not devnet's.
    .enablePositionalOptions()
    .exitOverride();
  registerDevCommand(program);
  registerDevnetCommand(program);
  registerNodeCommand(program);
  registerGenesisCommand(program);
  registerKeysCommand(program);
  registerRpcCommands(program);
  registerProofCommands(program);
  registerLedgerCommands(program);
  registerGovCommands(program, registerMeasureCommands(program));
  registerAttestationCommand(program);
  registerAuditCommand(program);
  // Every subcommand exits through the handler below instead of process.exit.
  const overrideAll = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(overrideAll);
  };
  overrideAll(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by commander.
      process.exitCode = err.exitCode;
      return;
    }
    const message = err instanceof CliError || err instanceof Error ? err.message : String(err);
    process.stderr.write(`error: ${message}\n`);
    process.exitCode = err instanceof CliError ? err.exitCode : 1;
  }
}

await main(process.argv);
