import { resolve } from 'node:path';
import type { Command } from 'commander';
import { provisionNode } from '../enclave/provision.js';
import { ConfigError, readNodeConfig } from '../config/read-config.js';
import { readGenesisFile } from '../dev/dev-chain.js';
import { createLogger } from '../log/logger.js';
import { CliError } from './errors.js';
import { runNode } from './run-node.js';

export function registerNodeCommand(program: Command): void {
  const node = program.command('node').description('prepare or run a node of a consortium');
  node
    .command('init')
    .description("make a node's network key and its enclave's sealed vote key; prints the node id and vote key for `cloister genesis --node`")
    .requiredOption('--data <dir>', "the node's data directory")
    .option('--virtual-root <file>', 'the virtual vendor root key file (virtual platform)', 'virtual-root.json')
    .action(async (opts: { data: string; virtualRoot: string }) => {
      const dataDir = resolve(opts.data);
      const log = createLogger({ level: 'warn', format: 'json' });
      const provisioned = await provisionNode({ dataDir, enclave: { platform: 'virtual', virtualRootFile: resolve(opts.virtualRoot) } }, log);
      process.stdout.write(JSON.stringify(provisioned, null, 2) + '\n');
    });
  node
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
      if (genesis.validators.length > 1 && !config.p2p) {
        throw new CliError(`the genesis has ${genesis.validators.length} validators: the config needs a "p2p" section (listen addresses and peers)`);
      }
      await runNode(config, createLogger(config.log), 'Cloister node');
    });
}
