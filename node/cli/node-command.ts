import type { Command } from 'commander';
import { ConfigError, readNodeConfig } from '../config/read-config.js';
import { readGenesisFile } from '../dev/dev-chain.js';
import { createLogger } from '../log/logger.js';
import { CliError } from './errors.js';
import { runNode } from './run-node.js';

export function registerNodeCommand(program: Command): void {
  program
    .command('node')
    .description('run a node of a consortium')
    .command('start')
    .description('start one node from its config.json (data directory, genesis, RPC, enclave platform)')
    .requiredOption('--config <file>', "the node's config.json")
    .action(async (opts: { config: string }) => {
      let config;
      try {
        config = readNodeConfig(opts.config);
      } catch (err) {
        if (err instanceof ConfigError) throw new CliError(err.message);
        throw err;
      }
      let genesis;
      try {
        genesis = readGenesisFile(config.genesisFile);
      } catch (err) {
        throw new CliError(`genesis ${config.genesisFile}: ${(err as Error).message}`);
      }
      if (!genesis.validators.some((v) => v.nodeId === config.nodeId)) {
        throw new CliError(`node "${config.nodeId}" is not a validator in ${config.genesisFile}`);
      }
      if (genesis.validators.length > 1) {
        throw new CliError('this version runs single-validator chains only; multi-node consensus is not implemented yet');
      }
      await runNode(config, createLogger(config.log), 'Cloister node');
    });
}
