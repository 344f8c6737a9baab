import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { findFreePortRange } from './free-ports.js';

export interface SpawnedDevnet {
  /** The `cloister devnet` supervisor process. */
  process: ChildProcess;
  /** Node i's JSON-RPC URL at index i - 1. */
  rpcUrls: string[];
  /** Node i's process id at index i - 1. */
  pids: number[];
  dataDir: string;
  /** The last lines the devnet printed (stdout and stderr), for failure reports. */
  outputTail(): string;
  /** The last lines of node i's log (`DIR/node-i/node.log`). */
  nodeLogTail(index: number, lines?: number): string;
  /** SIGTERM to the devnet (it stops its nodes in order); resolves once it has exited. */
  stop(): Promise<void>;
}

export interface SpawnDevnetOptions {
  nodes: number;
  dataDir: string;
  /** The nodes' log level (default warn). */
  logLevel?: string;
  /** Give up if the nodes do not all serve within this long (default 60 s). */
  startTimeoutMs?: number;
  /** Extra environment for the devnet and its nodes (e.g. NODE_OPTIONS for CPU profiles). */
  env?: NodeJS.ProcessEnv;
  /** Pass --fresh (default): false resumes a devnet directory prepared beforehand (see devnet-contracts.ts). */
  fresh?: boolean;
}

/** `node-3  http://127.0.0.1:8547  pid 7476  id 12D3…` (node/cli/devnet-command.ts). */
const NODE_LINE_RE = /^node-(\d+)\s+(http:\/\/\S+)\s+pid (\d+)/;

function tailOfFile(file: string, lines: number): string {
  if (!existsSync(file)) return `(no ${file})`;
  return readFileSync(file, 'utf8').split('\n').slice(-lines - 1).join('\n');
}

/**
 * Starts a fresh N-node devnet with the real CLI (`cloister devnet --fresh`) on
 * free ports in `dataDir` (or, with fresh: false, the one prepared there), and resolves once it printed the JSON-RPC URL of
 * every node (the supervisor prints them when every node serves).
 */
export async function spawnDevnet(root: string, opts: SpawnDevnetOptions): Promise<SpawnedDevnet> {
  const rpcBase = await findFreePortRange(2 * opts.nodes);
  const p2pBase = rpcBase + opts.nodes;
  const args = [
    join(root, 'bin/cloister.js'),
    'devnet',
    '--nodes', String(opts.nodes),
    '--data', opts.dataDir,
    '--rpc-base-port', String(rpcBase),
    '--p2p-base-port', String(p2pBase),
    ...(opts.fresh === false ? [] : ['--fresh']),
    '--log-level', opts.logLevel ?? 'warn',
  ];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  let output: string[] = [];
  const remember = (line: string): void => {
    output.push(line);
    if (output.length > 60) output = output.slice(-40);
  };
  createInterface({ input: child.stderr! }).on('line', remember);
  const rpcUrls: string[] = new Array(opts.nodes);
  const pids: number[] = new Array(opts.nodes);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Should the benchmark exit without stopping it (an uncaught error, a signal), the devnet still stops its nodes.
  const stopOnExit = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  process.on('exit', stopOnExit);
  void exited.then(() => process.off('exit', stopOnExit));

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exited;
  };
  const devnet: SpawnedDevnet = {
    process: child,
    rpcUrls,
    pids,
    dataDir: opts.dataDir,
    outputTail: () => output.join('\n'),
    nodeLogTail: (index, lines = 20) => tailOfFile(join(opts.dataDir, `node-${index}`, 'node.log'), lines),
    stop,
  };

  return new Promise<SpawnedDevnet>((resolve, reject) => {
    let seen = 0;
    const timer = setTimeout(() => {
      void stop().then(() => reject(new Error(`the devnet did not start within ${opts.startTimeoutMs ?? 60_000} ms:\n${devnet.outputTail()}`)));
    }, opts.startTimeoutMs ?? 60_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      // Height lines come several times a second: keep only what describes the devnet.
      if (!line.startsWith('height ')) remember(line);
      const m = NODE_LINE_RE.exec(line);
      if (!m) return;
      const i = Number(m[1]);
      if (i < 1 || i > opts.nodes || rpcUrls[i - 1] !== undefined) return;
      rpcUrls[i - 1] = m[2]!;
      pids[i - 1] = Number(m[3]);
      if (++seen === opts.nodes) {
        clearTimeout(timer);
        resolve(devnet);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the devnet exited (${signal ?? code}) before every node served:\n${devnet.outputTail()}`));
    });
  });
}
