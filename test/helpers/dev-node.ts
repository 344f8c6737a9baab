import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnDevNode, type SpawnedNode } from '../../scripts/bench/spawn-node.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(ROOT, 'bin/cloister.js');

/** A new temporary directory; cleanupNodes (in a test file's afterAll) removes it with the nodes' data. */
export function tempDir(prefix = 'cloister-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

export interface TestNode extends SpawnedNode {
  dataDir: string;
  kill(signal: NodeJS.Signals): Promise<void>;
}

const running = new Set<TestNode>();
const dirs = new Set<string>();

/** Starts `cloister dev` in a real process; `cleanupNodes` stops it and removes its data. */
export async function startNode(dataDir = tempDir(), args: string[] = []): Promise<TestNode> {
  dirs.add(dataDir);
  const spawned = await spawnDevNode(ROOT, dataDir, args);
  const node: TestNode = {
    ...spawned,
    dataDir,
    async kill(signal) {
      const child = spawned.process;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill(signal);
      await exited;
      running.delete(node);
    },
    async stop() {
      await spawned.stop();
      running.delete(node);
    },
  };
  running.add(node);
  return node;
}

export async function cleanupNodes(): Promise<void> {
  await Promise.all([...running].map((n) => n.kill('SIGKILL')));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the cloister CLI as a user would; `env` adds to (or, as undefined, removes from) this process's environment. */
export function runCli(args: string[], cwd = ROOT, env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
  });
}
