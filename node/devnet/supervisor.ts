import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { CloisterClient } from '../client/index.js';
import { projectRoot } from '../util/project-root.js';
import { commandLineOf, findDevnetProcesses, isAlive, NODE_PID_FILE, readPidFile, removePidFile, runsNode, writePidFile } from './devnet-processes.js';

/** The line `cloister node start` prints on stdout once it serves JSON-RPC (node/cli/run-node.ts). */
const READY_RE = /ready: JSON-RPC (http:\/\/\S+)/;
const LOG_TAIL_BYTES = 4096;

export type DevnetSupervisorErrorCode =
  | 'DEVNET_ALREADY_RUNNING'
  | 'NODE_ALREADY_RUNNING'
  | 'NODE_EXITED_BEFORE_READY'
  | 'NODE_START_TIMEOUT'
  | 'DEVNET_STOPPED';

export class DevnetSupervisorError extends Error {
  override readonly name = 'DevnetSupervisorError';
  constructor(
    readonly code: DevnetSupervisorErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** What the supervisor needs of a node prepared by prepareDevnet. */
export interface SupervisedNodeSpec {
  index: number;
  /** The node's data directory: node.pid and node.log are kept there. */
  dir: string;
  configFile: string;
}

export interface RunningNode {
  index: number;
  pid: number;
  rpcUrl: string;
  configFile: string;
  logFile: string;
}

/** A node that exited while the devnet was running (not because the devnet stopped it). */
export interface NodeDeath {
  index: number;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  configFile: string;
  logFile: string;
}

export interface NodeHeight {
  index: number;
  /** null: the node is not running, or did not answer this time. */
  height: number | null;
  running: boolean;
}

export interface DevnetSupervisorOptions {
  nodes: SupervisedNodeSpec[];
  /** Called once for each node that dies after it was ready. The node is not restarted. */
  onDeath?: (death: NodeDeath) => void;
  /** How long every node together may take to print its ready line. Default 120 s. */
  startTimeoutMs?: number;
  /** How long a node may take to stop after SIGTERM before it gets SIGKILL. Default 10 s. */
  stopTimeoutMs?: number;
  /** The arguments after process.execPath that run one node; tests put a stand-in here. */
  nodeCommand?: (node: SupervisedNodeSpec) => string[];
}

type SlotState = 'idle' | 'starting' | 'running' | 'stopping' | 'exited';

interface Slot {
  spec: SupervisedNodeSpec;
  pidFile: string;
  logFile: string;
  state: SlotState;
  child?: ChildProcess;
  pid?: number;
  rpcUrl?: string;
  client?: CloisterClient;
  /** Resolves once the process is gone and its output is in the log. */
  closed?: Promise<void>;
}

/** `cloister node start --config FILE` through the entry that also stops the node when the supervisor is gone. */
const defaultNodeCommand = (node: SupervisedNodeSpec): string[] => [
  join(projectRoot(), 'dist', 'node', 'devnet', 'supervised-node.js'),
  'node',
  'start',
  '--config',
  node.configFile,
];

/**
 * Runs the nodes of a devnet as child processes: starts them all, reports a
 * node that dies (and leaves it dead, so the developer sees the failure rather
 * than a flapping node), and stops them all on request.
 *
 * Each node is its own process group (detached), so a Ctrl-C at the terminal
 * reaches only the devnet, which then stops the nodes in order; a node that
 * exits on its own is then always a death, never a race with shutdown.
 * Each node's stdin is a pipe from this process that is never written to:
 * when this process ends, even by SIGKILL, the pipe closes and the node
 * (through node/devnet/supervised-node.ts) stops as on SIGTERM.
 */
export class DevnetSupervisor {
  readonly #opts: Required<Omit<DevnetSupervisorOptions, 'onDeath'>> & Pick<DevnetSupervisorOptions, 'onDeath'>;
  readonly #slots: Slot[];
  #starting: Promise<RunningNode[]> | undefined;
  #stopping: Promise<void> | undefined;
  readonly #watchers = new Set<() => void>();

  constructor(options: DevnetSupervisorOptions) {
    this.#opts = { startTimeoutMs: 120_000, stopTimeoutMs: 10_000, nodeCommand: defaultNodeCommand, ...options };
    this.#slots = options.nodes.map((spec) => ({
      spec,
      pidFile: join(spec.dir, NODE_PID_FILE),
      logFile: join(spec.dir, 'node.log'),
      state: 'idle',
    }));
  }

  /**
   * Starts every node and resolves once each printed its ready line. If one
   * exits first or they take too long, the others are stopped and the error
   * carries the end of the failed node's log.
   */
  start(): Promise<RunningNode[]> {
    this.#starting ??= this.#startAll();
    return this.#starting;
  }

  /** Idempotent: SIGTERM to every live node, SIGKILL to any still there after the stop timeout; removes their pid files. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stopAll();
    return this.#stopping;
  }

  /** The nodes running now. */
  running(): RunningNode[] {
    return this.#slots.filter((s) => s.state === 'running').map((s) => this.#describe(s));
  }

  /**
   * Asks every running node for its height (chain_blockNumber) every
   * `intervalMs` and hands the answers over; a node that does not answer in
   * time counts as unknown this round. Returns a function that stops watching.
   */
  watchHeights(onHeights: (heights: NodeHeight[]) => void, intervalMs = 1000): () => void {
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const unwatch = (): void => {
      stopped = true;
      clearTimeout(timer);
      this.#watchers.delete(unwatch);
    };
    const poll = async (): Promise<void> => {
      const heights = await Promise.all(this.#slots.map((slot) => this.#heightOf(slot, intervalMs)));
      if (stopped) return;
      onHeights(heights);
      timer = setTimeout(() => void poll(), intervalMs);
    };
    this.#watchers.add(unwatch);
    timer = setTimeout(() => void poll(), intervalMs);
    return unwatch;
  }

  async #heightOf(slot: Slot, timeoutMs: number): Promise<NodeHeight> {
    const index = slot.spec.index;
    if (slot.state !== 'running' || !slot.rpcUrl) return { index, height: null, running: false };
    slot.client ??= new CloisterClient(slot.rpcUrl, { timeoutMs });
    try {
      return { index, height: await slot.client.blockNumber(), running: true };
    } catch {
      // A node that is busy, or dying: its exit is reported separately.
      return { index, height: null, running: true };
    }
  }

  async #startAll(): Promise<RunningNode[]> {
    for (const slot of this.#slots) refuseIfRunning(slot);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const waiting = this.#slots.filter((s) => s.state === 'starting').map((s) => `node-${s.spec.index}`);
        reject(new DevnetSupervisorError('NODE_START_TIMEOUT', `${waiting.join(', ')} did not get ready within ${this.#opts.startTimeoutMs} ms; see their node.log`));
      }, this.#opts.startTimeoutMs);
    });
    // All at once: a validator may wait for its peers before it serves.
    const ready = this.#slots.map((slot) => this.#spawn(slot));
    try {
      await Promise.race([Promise.all(ready), timeout]);
      return this.#slots.map((s) => this.#describe(s));
    } catch (err) {
      // Nothing half-started stays behind.
      await this.stop();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Spawns one node; resolves when it is ready, rejects if it exits first. */
  #spawn(slot: Slot): Promise<void> {
    const { spec } = slot;
    if (this.#stopping) return Promise.reject(new DevnetSupervisorError('DEVNET_STOPPED', 'the devnet was stopped while starting'));
    // The node's own stderr (its log) goes straight to the file, so the log outlives the devnet process.
    const logFd = openSync(slot.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, this.#opts.nodeCommand(spec), { stdio: ['pipe', 'pipe', logFd], detached: true });
    } finally {
      closeSync(logFd);
    }
    // Never written to, never ended: its closing (this process gone) is the node's signal to stop.
    child.stdin!.on('error', () => {});
    slot.child = child;
    slot.state = 'starting';
    // The node's stdout is a line or two: written synchronously, so the log has it before anyone is told.
    const stdoutFd = openSync(slot.logFile, 'a');
    if (child.pid !== undefined) {
      slot.pid = child.pid;
      writePidFile(slot.pidFile, child.pid);
    }
    return new Promise<void>((resolveReady, rejectReady) => {
      let pending = '';
      let spawnError: Error | undefined;
      // stdout carries the ready line; it is copied to the log as it comes.
      child.stdout!.on('data', (chunk: Buffer) => {
        writeSync(stdoutFd, chunk);
        if (slot.state !== 'starting') return;
        pending += chunk.toString('utf8');
        const lines = pending.split('\n');
        pending = lines.pop()!;
        for (const line of lines) {
          const match = READY_RE.exec(line);
          if (match) {
            slot.rpcUrl = match[1]!;
            slot.state = 'running';
            resolveReady();
            return;
          }
        }
      });
      slot.closed = new Promise<void>((resolveClosed) => {
        // 'close', not 'exit': by then everything the node wrote is in the pipe's buffer.
        child.once('close', (code, signal) => {
          const was = slot.state;
          slot.state = 'exited';
          closeSync(stdoutFd);
          if (was === 'starting') {
            const why = spawnError
              ? `could not be started: ${spawnError.message}`
              : `exited (${describeExit(code, signal)}) before it was ready. The end of ${slot.logFile}:\n${readTail(slot.logFile)}`;
            rejectReady(new DevnetSupervisorError('NODE_EXITED_BEFORE_READY', `node-${spec.index} ${why}`));
          } else if (was === 'stopping') {
            rejectReady(new DevnetSupervisorError('DEVNET_STOPPED', 'the devnet was stopped while starting'));
          } else if (was === 'running') {
            this.#opts.onDeath?.({ index: spec.index, pid: slot.pid ?? child.pid ?? 0, code, signal, configFile: spec.configFile, logFile: slot.logFile });
          }
          resolveClosed();
        });
      });
      // A process that could not be made at all: 'close' follows, and reports it.
      child.on('error', (err) => (spawnError ??= err));
    });
  }

  async #stopAll(): Promise<void> {
    for (const unwatch of [...this.#watchers]) unwatch();
    await Promise.all(this.#slots.map((slot) => this.#stopOne(slot)));
  }

  async #stopOne(slot: Slot): Promise<void> {
    const { child } = slot;
    if (!child || !slot.closed || (slot.state !== 'starting' && slot.state !== 'running')) return;
    slot.state = 'stopping';
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), this.#opts.stopTimeoutMs);
    await slot.closed;
    clearTimeout(timer);
    if (slot.pid !== undefined) removePidFile(slot.pidFile, slot.pid);
  }

  #describe(slot: Slot): RunningNode {
    return { index: slot.spec.index, pid: slot.pid ?? slot.child?.pid ?? 0, rpcUrl: slot.rpcUrl ?? '', configFile: slot.spec.configFile, logFile: slot.logFile };
  }
}

/** A pid file naming a running node of this config means an earlier devnet's node still holds this directory. */
function refuseIfRunning(slot: Slot): void {
  const pid = readPidFile(slot.pidFile);
  if (pid === undefined || !isAlive(pid)) return;
  const args = commandLineOf(pid);
  // A pid file outlives its process: a pid now used by something else is stale, and is overwritten.
  if (args && runsNode(args, slot.spec.configFile)) throw alreadyRunning(slot.spec.index, pid, slot.pidFile);
}

function alreadyRunning(index: number, pid: number, pidFile: string): DevnetSupervisorError {
  return new DevnetSupervisorError(
    'NODE_ALREADY_RUNNING',
    `node-${index} of this devnet is already running (pid ${pid} in ${pidFile}); stop that devnet first (cloister devnet stop --data DIR)`,
  );
}

/**
 * Refuses a devnet directory in which the devnet (DIR/devnet.pid) or a node
 * (DIR/node-i/node.pid) is running. Called before the directory is prepared,
 * so a second devnet neither wipes (--fresh) nor reconfigures a running one.
 * Stale pid files do not count (see devnet-processes.ts).
 */
export function refuseRunningDevnet(dataDir: string): void {
  const { supervisor, nodes } = findDevnetProcesses(dataDir);
  if (supervisor) {
    throw new DevnetSupervisorError(
      'DEVNET_ALREADY_RUNNING',
      `a devnet is already running in ${dataDir} (pid ${supervisor.pid} in ${supervisor.pidFile}); stop it first (cloister devnet stop --data DIR)`,
    );
  }
  const [node] = nodes;
  if (node) throw alreadyRunning(Number(node.name.slice('node-'.length)), node.pid, node.pidFile);
}

export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal ${signal}` : `code ${code ?? 'unknown'}`;
}

/** The last few KiB of a log that may have grown over many runs. */
function readTail(file: string): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const length = Math.min(size, LOG_TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    return buffer.toString('utf8').trimEnd();
  } catch (err) {
    return `(cannot read it: ${(err as Error).message})`;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
