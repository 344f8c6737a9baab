import { existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { genesisHash } from '../../consensus/index.js';
import { readGenesisFile } from '../dev/dev-chain.js';
import { removePidFile, supervisorPidFile, writePidFile } from '../devnet/devnet-processes.js';
import { MAX_DEVNET_NODES, prepareDevnet } from '../devnet/prepare-devnet.js';
import { stopDevnet, type StoppedProcess } from '../devnet/stop-devnet.js';
import { DevnetSupervisor, DevnetSupervisorError, describeExit, refuseRunningDevnet, type NodeDeath, type NodeHeight } from '../devnet/supervisor.js';
import { createLogger, type LogLevel } from '../log/logger.js';
import { CliError, parsePositiveInt } from './errors.js';
import { EXIT } from './exit-codes.js';

interface DevnetOptions {
  nodes: number;
  data: string;
  rpcBasePort: number;
  p2pBasePort: number;
  fresh: boolean;
  logLevel?: string;
  contract?: string[];
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
  const devnet = program
    .command('devnet')
    .description('run a local consortium: N validator nodes, each its own process with a virtual enclave (`devnet stop` stops one)')
    .option('--nodes <n>', `number of nodes (1..${MAX_DEVNET_NODES})`, parseNodeCount, 4)
    .option('--data <dir>', 'devnet directory, node i in DIR/node-i/ (resumed if it exists)', '.cloister-devnet')
    .option('--rpc-base-port <port>', 'node i serves JSON-RPC on this port + i - 1', parseBasePort, 8545)
    .option('--p2p-base-port <port>', 'node i listens for peers on this port + i - 1', parseBasePort, 7701)
    .option('--fresh', 'wipe the devnet directory first', false)
    .option('--contract <dir...>', 'also deploy these contract bundles at genesis; on an existing devnet, refuse unless its genesis deployed exactly these')
    .option('--log-level <level>', "the nodes' log level: debug, info, warn or error (default info; a resumed devnet keeps its own)")
    .action(async (opts: DevnetOptions) => runDevnet(opts));
  devnet
    .command('stop')
    .description('stop the devnet running in DIR (found from its pid files): the devnet, then any node left; reports what it stopped')
    .option('--data <dir>', 'devnet directory', '.cloister-devnet')
    .option('--timeout <ms>', 'how long each process may take to stop after SIGTERM before SIGKILL', parsePositiveInt, 15_000)
    .action(async (opts: { data: string; timeout: number }) => runDevnetStop(opts));
}

const say = (line: string): void => {
  process.stdout.write(line + '\n');
};

/**
 * Once the terminal is gone (SIGHUP) writing to it fails (EIO, EPIPE), and an
 * unhandled stream error would end the devnet before it stops its nodes.
 * There is no one left to tell, so such errors are dropped.
 */
function outliveTheTerminal(): void {
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
}

async function runDevnet(opts: DevnetOptions): Promise<void> {
  if (opts.logLevel !== undefined && !LOG_LEVELS.includes(opts.logLevel as LogLevel)) {
    throw new CliError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  }
  // The devnet's own diagnostics; what it reports goes to stdout as plain text.
  const log = createLogger({ level: 'warn', format: 'pretty' });
  outliveTheTerminal();
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
    extraContracts: (opts.contract ?? []).map((dir) => resolve(dir)),
  });
  const genesis = readGenesisFile(prepared.genesisFile);
  say(`Cloister devnet: ${prepared.nodes.length} node${prepared.nodes.length === 1 ? '' : 's'} in ${dataDir} (${prepared.created ? 'new' : 'resumed'})`);
  say(`genesis  ${prepared.genesisFile}`);
  say(`chain    ${genesis.chainId}`);
  say(`hash     ${genesisHash(genesis)}`);
  // Where the members' keys are (a resumed devnet made before member-i.json has the one member.json).
  const memberFiles = genesis.members.map((m, k) => join(dataDir, genesis.members.length === 1 && m.id === 'dev' ? 'member.json' : `member-${k + 1}.json`));
  const majority = Math.floor(genesis.members.length / 2) + 1;
  say(`members  ${memberFiles.join(', ')} (${majority} of ${genesis.members.length} are a majority; member-1 owns token)`);

  const nodeIds = new Map(prepared.nodes.map((n) => [n.index, n.nodeId]));
  // `cloister devnet stop` finds this process here; it is removed on the way out (the nodes' go as they stop).
  const pidFile = supervisorPidFile(dataDir);
  writePidFile(pidFile, process.pid);
  process.once('exit', () => removePidFile(pidFile, process.pid));
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
  // SIGHUP: the terminal closed. Its default would end this process and leave the nodes running.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);

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

const HOW: Record<StoppedProcess['how'], string> = {
  SIGTERM: 'stopped (SIGTERM)',
  SIGKILL: 'killed (SIGKILL: still running after the grace period)',
  devnet: 'stopped by the devnet',
  exited: 'had already exited',
};

async function runDevnetStop(opts: { data: string; timeout: number }): Promise<void> {
  const dataDir = resolve(opts.data);
  if (!existsSync(dataDir)) throw new CliError(`${dataDir} does not exist: no devnet to stop there`);
  const outcome = await stopDevnet(dataDir, { graceMs: opts.timeout });
  const where = (file: string): string => relative(dataDir, file);
  for (const p of outcome.stopped) say(`${p.name} (pid ${p.pid}): ${HOW[p.how]}`);
  for (const s of outcome.stale) {
    const what = s.otherProcess ? `is now another process (${s.otherProcess.slice(0, 120)}), left alone` : 'is not running';
    say(`${s.name}: removed the stale ${where(s.pidFile)} (pid ${s.pid} ${what})`);
  }
  if (outcome.failed.length > 0) {
    const failed = outcome.failed.map((f) => `${f.name} (pid ${f.pid}): ${f.reason}`).join('; ');
    throw new CliError(`could not stop ${failed}`, EXIT.ERROR);
  }
  if (outcome.stopped.length === 0) say(`nothing of a devnet is running in ${dataDir}`);
}
