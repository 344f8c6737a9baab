import { resolve } from 'node:path';
import type { Command } from 'commander';
import { genesisHash } from '../../consensus/index.js';
import { readGenesisFile } from '../dev/dev-chain.js';
import { MAX_DEVNET_NODES, prepareDevnet } from '../devnet/prepare-devnet.js';
import { DevnetSupervisor, DevnetSupervisorError, describeExit, refuseRunningDevnet, type NodeDeath, type NodeHeight } from '../devnet/supervisor.js';
import { createLogger, type LogLevel } from '../log/logger.js';
import { CliError } from './errors.js';

interface DevnetOptions {
  nodes: number;
  data: string;
  rpcBasePort: number;
  p2pBasePort: number;
  fresh: boolean;
  logLevel?: string;
}

const LOG_LEVELS: LogLevel[] = ['debug', 'info', 'warn', 'error'];

function parseNodeCount(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > MAX_DEVNET_NODES) throw new CliError(`--nodes must be an integer from 1 to ${MAX_DEVNET_NODES}: ${text}`);
  return n;
}

/** A base port: node i uses base + i - 1, so 0 ("any free port") has no meaning here. */
function parseBasePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CliError(`not a TCP port (1..65535): ${text}`);
  return port;
}

export function registerDevnetCommand(program: Command): void {
  program
    .command('devnet')
    .description('run a local consortium: N validator nodes, each its own process with a virtual enclave')
    .option('--nodes <n>', `number of nodes (1..${MAX_DEVNET_NODES})`, parseNodeCount, 4)
    .option('--data <dir>', 'devnet directory, node i in DIR/node-i/ (resumed if it exists)', '.cloister-devnet')
    .option('--rpc-base-port <port>', 'node i serves JSON-RPC on this port + i - 1', parseBasePort, 8545)
    .option('--p2p-base-port <port>', 'node i listens for peers on this port + i - 1', parseBasePort, 7701)
    .option('--fresh', 'wipe the devnet directory first', false)
    .option('--log-level <level>', "the nodes' log level: debug, info, warn or error (default info; a resumed devnet keeps its own)")
    .action(async (opts: DevnetOptions) => runDevnet(opts));
}

const say = (line: string): void => {
  process.stdout.write(line + '\n');
};

async function runDevnet(opts: DevnetOptions): Promise<void> {
  if (opts.logLevel !== undefined && !LOG_LEVELS.includes(opts.logLevel as LogLevel)) {
    throw new CliError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  }
  // The devnet's own diagnostics; what it reports goes to stdout as plain text.
  const log = createLogger({ level: 'warn', format: 'pretty' });
  const dataDir = resolve(opts.data);
  refuseRunningDevnet(dataDir);
  const prepared = await prepareDevnet({
    nodes: opts.nodes,
    dataDir,
    rpcBasePort: opts.rpcBasePort,
    p2pBasePort: opts.p2pBasePort,
    fresh: opts.fresh,
    now: Date.now(),
    log,
    ...(opts.logLevel !== undefined ? { logLevel: opts.logLevel as LogLevel } : {}),
  });
  const genesis = readGenesisFile(prepared.genesisFile);
  say(`Cloister devnet: ${prepared.nodes.length} node${prepared.nodes.length === 1 ? '' : 's'} in ${dataDir} (${prepared.created ? 'new' : 'resumed'})`);
  say(`genesis  ${prepared.genesisFile}`);
  say(`chain    ${genesis.chainId}`);
  say(`hash     ${genesisHash(genesis)}`);

  const nodeIds = new Map(prepared.nodes.map((n) => [n.index, n.nodeId]));
  const stopAndExit = (code: number): void => {
    void supervisor.stop().then(() => process.exit(code));
  };
  const supervisor = new DevnetSupervisor({
    nodes: prepared.nodes,
    onDeath: (death) => {
      say(deathLine(death));
      // Nothing left to watch: say so instead of printing the heights of nobody forever.
      if (supervisor.running().length === 0) {
        say('every node has exited; stopping the devnet');
        stopAndExit(1);
      }
    },
  });
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: stopping the devnet`);
    stopAndExit(0);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let running;
  try {
    running = await supervisor.start();
  } catch (err) {
    // Stopped by a signal while starting: onSignal finishes the exit.
    if (err instanceof DevnetSupervisorError && err.code === 'DEVNET_STOPPED') return;
    throw err;
  }
  for (const node of running) say(`node-${node.index}  ${node.rpcUrl}  pid ${node.pid}  id ${nodeIds.get(node.index)}`);

  let lastMax = -1;
  supervisor.watchHeights((heights) => {
    const max = Math.max(-1, ...heights.map((h) => h.height ?? -1));
    if (max === lastMax || max < 0) return;
    lastMax = max;
    say(heightLine(max, heights));
  });
}

function heightLine(max: number, heights: NodeHeight[]): string {
  const each = heights.map((h) => `node-${h.index} ${h.height ?? (h.running ? '?' : 'down')}`);
  return `height ${max}  [${each.join(', ')}]`;
}

function deathLine(death: NodeDeath): string {
  return (
    `node-${death.index} (pid ${death.pid}) exited (${describeExit(death.code, death.signal)}); not restarting it. ` +
    `Restart it by hand: cloister node start --config ${death.configFile}  (its log: ${death.logFile})`
  );
}
