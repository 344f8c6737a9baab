import { resolve } from 'node:path';
import type { Command } from 'commander';
import { prepareDevChain } from '../dev/dev-chain.js';
import { createLogger, type LogLevel } from '../log/logger.js';
import { CloisterNode } from '../node.js';
import { CliError, parsePort } from './errors.js';

interface DevOptions {
  data: string;
  rpcPort: number;
  rpcHost: string;
  fresh: boolean;
  contract?: string[];
  logFormat: string;
  logLevel: string;
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
    .option('--contract <dir...>', 'also deploy these contract bundles at genesis (new chains only)')
    .option('--log-format <format>', 'pretty or json', 'pretty')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .action(async (opts: DevOptions) => runDev(opts));
}

async function runDev(opts: DevOptions): Promise<void> {
  if (opts.logFormat !== 'pretty' && opts.logFormat !== 'json') throw new CliError(`--log-format must be pretty or json`);
  if (!LOG_LEVELS.includes(opts.logLevel as LogLevel)) throw new CliError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const log = createLogger({ format: opts.logFormat, level: opts.logLevel as LogLevel });
  const dataDir = resolve(opts.data);
  const { config, created } = await prepareDevChain({
    dataDir,
    rpcPort: opts.rpcPort,
    rpcHost: opts.rpcHost,
    fresh: opts.fresh,
    now: Date.now(),
    extraContracts: (opts.contract ?? []).map((dir) => resolve(dir)),
  });
  log.info(created ? 'created a new development chain' : 'resuming the development chain', { dataDir });

  let exiting = false;
  const node = new CloisterNode({
    config,
    log,
    onFatal: (err) => {
      log.error('the node cannot go on; stopping', { error: err.message });
      void node.stop().finally(() => process.exit(1));
    },
  });
  const shutdown = (signal: string): void => {
    if (exiting) return;
    exiting = true;
    log.info('stopping', { signal });
    void node.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));

  await node.start();
  const status = node.chain.status();
  // The one line scripts and tests wait for.
  process.stdout.write(`Cloister dev chain ready: JSON-RPC ${node.rpcUrl} (chain ${status.chainId}, height ${status.height})\n`);
  let lastReported = -1;
  node.chain.onBlock((block) => {
    // Report progress at most once a second under load.
    const second = Math.floor(block.header.time / 1000);
    if (second !== lastReported) {
      lastReported = second;
      log.info('committed', { height: block.header.height, txs: block.txHashes.length, mempool: node.chain.mempool.size });
    }
  });
}
