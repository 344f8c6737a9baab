import { resolve } from 'node:path';
import type { Command } from 'commander';
import { DevChainError, checkContractsDeployed, prepareDevChain } from '../dev/dev-chain.js';
import { createLogger, type LogLevel } from '../log/logger.js';
import { CliError, parsePort } from './errors.js';
import { runNode } from './run-node.js';

interface DevOptions {
  data: string;
  rpcPort: number;
  rpcHost: string;
  fresh: boolean;
  contract?: string[];
  logFormat: string;
  logLevel: string;
  /** False with --no-explorer. */
  explorer: boolean;
}

const LOG_LEVELS: LogLevel[] = ['debug', 'info', 'warn', 'error'];

export function registerDevCommand(program: Command): void {
  program
    .command('dev')
    .description('run a single-node development chain (virtual enclave, embedded storage)')
    .option('--data <dir>', 'data directory (resumed if it exists)', '.cloister')
    .option('--rpc-port <port>', 'JSON-RPC port (0 picks a free one)', parsePort, 8545)
    .option('--rpc-host <host>', 'JSON-RPC listen address', '127.0.0.1')
    .option('--fresh', 'wipe the data directory first', false)
    .option('--contract <dir...>', 'also deploy these contract bundles at genesis; on an existing chain, refuse to run unless it runs exactly these bundles')
    .option('--log-format <format>', 'pretty or json', 'pretty')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .option('--no-explorer', 'do not serve the explorer page on GET / of the RPC port')
    .action(async (opts: DevOptions) => runDev(opts));
}

async function runDev(opts: DevOptions): Promise<void> {
  if (opts.logFormat !== 'pretty' && opts.logFormat !== 'json') throw new CliError(`--log-format must be pretty or json`);
  if (!LOG_LEVELS.includes(opts.logLevel as LogLevel)) throw new CliError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const log = createLogger({ format: opts.logFormat, level: opts.logLevel as LogLevel });
  const dataDir = resolve(opts.data);
  let prepared;
  try {
    prepared = await prepareDevChain({
      dataDir,
      rpcPort: opts.rpcPort,
      rpcHost: opts.rpcHost,
      fresh: opts.fresh,
      now: Date.now(),
      extraContracts: (opts.contract ?? []).map((dir) => resolve(dir)),
      log,
    });
  } catch (err) {
    if (err instanceof DevChainError) throw new CliError(err.message);
    throw err;
  }
  const { created } = prepared;
  const config = opts.explorer ? prepared.config : { ...prepared.config, rpc: { ...prepared.config.rpc, explorer: false } };
  log.info(created ? 'created a new development chain' : 'resuming the development chain', { dataDir });

  const extra = created ? [] : (opts.contract ?? []).map((dir) => resolve(dir));
  const rpcUrl = opts.rpcPort === 0 ? 'URL' : `http://${opts.rpcHost}:${opts.rpcPort}`;
  await runNode(config, log, 'Cloister dev chain', async (node) => {
    try {
      await checkContractsDeployed(node.chain.listContracts(), extra, { dataDir, rpcUrl });
    } catch (err) {
      if (err instanceof DevChainError) throw new CliError(err.message);
      throw err;
    }
  });
}
