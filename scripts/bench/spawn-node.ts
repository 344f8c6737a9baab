import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface SpawnedNode {
  process: ChildProcess;
  /** The last few KiB the node wrote to stderr (for failure reports). */
  stderrTail(): string;
  rpcUrl: string;
  stop(): Promise<void>;
}

const READY_RE = /JSON-RPC (http:\/\/[^\s]+)/;

/** Starts `cloister dev` as a child process and resolves with its JSON-RPC URL once it is ready. */
export function spawnDevNode(root: string, dataDir: string, extraArgs: string[] = [], nodeArgs: string[] = [], env?: NodeJS.ProcessEnv): Promise<SpawnedNode> {
  const logArgs = ['--log-format', 'json', '--log-level', process.env.BENCH_NODE_LOG_LEVEL ?? 'warn'];
  return spawnCloister(root, ['dev', '--data', dataDir, '--rpc-port', '0', ...logArgs, ...extraArgs], nodeArgs, env);
}

/** Starts any long-running `cloister` command and resolves once it prints its JSON-RPC URL. */
export function spawnCloister(root: string, args: string[], nodeArgs: string[] = [], env?: NodeJS.ProcessEnv): Promise<SpawnedNode> {
  const child = spawn(process.execPath, [...nodeArgs, join(root, 'bin/cloister.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const match = READY_RE.exec(line);
      if (match) resolve({ process: child, rpcUrl: match[1]!, stop, stderrTail: () => stderr });
    });
    child.once('exit', (code) => reject(new Error(`node exited (${code}) before it was ready: ${stderr}`)));
  });
}
