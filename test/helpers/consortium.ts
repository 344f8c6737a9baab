/**
 * A harness for multi-node tests with real processes: builds an n-node
 * consortium in a temp dir with `prepareDevnet`, then starts, stops, kills
 * (SIGKILL) and restarts each node as its own `cloister node start --config`
 * process. It does not use the devnet supervisor: a test decides which node
 * runs when, and which program (the real one or a modified copy) runs it.
 *
 * Nodes are numbered from 1, as in their directories (DIR/node-1 …).
 *
 * Every process and directory it makes is registered; `cleanupConsortia()`
 * (afterEach/afterAll) SIGKILLs the processes and removes the directories.
 * Set CLOISTER_KEEP_TEST_DIRS=1 to keep the directories (node logs are in
 * DIR/logs/node-<i>.log).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  copyFileSync,
  cpSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  type WriteStream,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import '../../node/polyfills.js';
import { findFreePortRange } from '../../scripts/bench/free-ports.js';
import { generateEd25519KeyPair, Ed25519Signer, signTx, type SignedTx } from '../../consensus/index.js';
import { CloisterClient, RpcError, type NodeView, type ReceiptView } from '../../node/client/index.js';
import { nodePaths, type NodeConfig } from '../../node/config/node-config.js';
import { readNodeConfig, writeNodeConfig } from '../../node/config/read-config.js';
import { prepareDevnet } from '../../node/devnet/prepare-devnet.js';
import { silentLogger } from '../../node/log/logger.js';
import { ROOT } from './dev-node.js';

export { ROOT };

// ------------------------------------------------------------------ registry and cleanup

const liveChildren = new Set<ChildProcess>();
const tempDirs = new Set<string>();
const consortia = new Set<Consortium>();
const keepDirs = process.env.CLOISTER_KEEP_TEST_DIRS === '1';

// Last resort: never leave node processes behind when the test process exits.
process.once('exit', () => {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/**
 * SIGKILLs every node process this harness started and removes its temp dirs.
 * With `printLogs` (a failed test), first prints the tail of every node's log.
 * In a test file: `afterEach((ctx) => cleanupConsortia({ printLogs: ctx.task.result?.state === 'fail' }))`.
 */
export async function cleanupConsortia(options: { printLogs?: boolean } = {}): Promise<void> {
  await Promise.all([...consortia].map((c) => c.killAll()));
  if (options.printLogs) for (const c of consortia) console.error(c.logs(40));
  consortia.clear();
  await Promise.all([...liveChildren].map((child) => killChild(child)));
  if (!keepDirs) for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    liveChildren.delete(child);
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    child.once('exit', () => {
      liveChildren.delete(child);
      resolve();
    });
    child.kill('SIGKILL');
  });
}

// ------------------------------------------------------------------ small utilities

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` until it holds; throws naming `what` (and the last error or value seen) after `timeoutMs`. */
export async function waitUntil(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string, pollMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      if (await cond()) return;
      last = '';
    } catch (err) {
      last = ` (last error: ${(err as Error).message})`;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}`);
    await sleep(pollMs);
  }
}

// ------------------------------------------------------------------ node processes

const READY_RE = /JSON-RPC (http:\/\/\S+)/;

interface RunningProcess {
  child: ChildProcess;
  rpcUrl: string;
}

/**
 * Starts `<programRoot>/bin/cloister.js node start --config FILE` and resolves
 * with its RPC URL once it prints its ready line. This is spawnCloister
 * (scripts/bench/spawn-node.ts) with the child registered before it is ready, a
 * start deadline, and the whole stderr kept in a log file: a node that never
 * gets ready is still killed by the cleanup.
 */
function startNodeProcess(programRoot: string, configFile: string, logFile: string, timeoutMs: number): Promise<RunningProcess> {
  const child = spawn(process.execPath, [join(programRoot, 'bin/cloister.js'), 'node', 'start', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  const log: WriteStream = createWriteStream(logFile, { flags: 'a' });
  log.write(`---- ${new Date().toISOString()} start pid ${child.pid} (${programRoot})\n`);
  child.stderr!.pipe(log);
  child.once('exit', (code, signal) => appendFileSync(logFile, `---- ${new Date().toISOString()} exit pid ${child.pid} code ${code} signal ${signal}\n`));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void killChild(child);
      reject(new Error(`node (${configFile}) printed no ready line within ${timeoutMs} ms; log: ${logFile}\n${tailOf(logFile, 20)}`));
    }, timeoutMs);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const match = READY_RE.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve({ child, rpcUrl: match[1]! });
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      // Give the log stream a moment to flush what the node wrote last.
      setTimeout(() => reject(new Error(`node (${configFile}) exited (${code ?? signal}) before it was ready:\n${tailOf(logFile, 20)}`)), 50);
    });
  });
}

function tailOf(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines - 1).join('\n');
  } catch {
    return '(no log)';
  }
}

// ------------------------------------------------------------------ the consortium

export interface ConsortiumNode {
  /** 1-based. */
  index: number;
  dir: string;
  configFile: string;
  nodeId: string;
  rpcPort: number;
  p2pPort: number;
  logFile: string;
}

/** One entry of `net_nodes` (the typed client's `nodes()`). */
export type NetNode = NodeView;

export interface AckedTx {
  hash: string;
  /** The node (1-based) that acknowledged it. */
  node: number;
  sender: string;
  nonce: number;
  /** When it was acknowledged (ISO time, to find it in the node logs). */
  at: string;
}

export interface ConsortiumOptions {
  /** Default 4. */
  nodes?: number;
  /** Node log level (default: $CLOISTER_TEST_NODE_LOG_LEVEL or 'info'); logs go to DIR/logs. */
  logLevel?: NodeConfig['log']['level'];
}

export class Consortium {
  readonly dir: string;
  readonly genesisFile: string;
  readonly chainId: string;
  readonly nodes: ConsortiumNode[];
  readonly #running = new Map<number, RunningProcess>();
  readonly #clients = new Map<number, CloisterClient>();

  private constructor(dir: string, genesisFile: string, nodes: ConsortiumNode[]) {
    this.dir = dir;
    this.genesisFile = genesisFile;
    this.nodes = nodes;
    this.chainId = (JSON.parse(readFileSync(genesisFile, 'utf8')) as { chainId: string }).chainId;
  }

  /** Prepares (does not start) a fresh consortium in a new temp dir. */
  static async create(options: ConsortiumOptions = {}): Promise<Consortium> {
    const n = options.nodes ?? 4;
    const dir = makeTempDir('cloister-consortium-');
    // Node i serves JSON-RPC on base + i - 1 and listens for peers on base + n + i - 1.
    const base = await findFreePortRange(2 * n);
    const prepared = await prepareDevnet({
      nodes: n,
      dataDir: dir,
      rpcBasePort: base,
      p2pBasePort: base + n,
      now: Date.now(),
      log: silentLogger,
      fresh: true,
      // JSON logs at a level that shows admission and commits; each node's stderr goes to DIR/logs.
      logLevel: options.logLevel ?? (process.env.CLOISTER_TEST_NODE_LOG_LEVEL as NodeConfig['log']['level'] | undefined) ?? 'info',
    });
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const nodes = prepared.nodes.map(
      (p): ConsortiumNode => ({ ...p, logFile: join(dir, 'logs', `node-${p.index}.log`) }),
    );
    if (nodes.some((n, k) => n.index !== k + 1)) throw new Error('prepareDevnet numbers its nodes differently than expected');
    const consortium = new Consortium(dir, prepared.genesisFile, nodes);
    consortia.add(consortium);
    return consortium;
  }

  node(i: number): ConsortiumNode {
    const node = this.nodes[i - 1];
    if (!node) throw new Error(`no node ${i} (the consortium has ${this.nodes.length})`);
    return node;
  }

  config(i: number): NodeConfig {
    return readNodeConfig(this.node(i).configFile);
  }

  /** Every node index, 1…n. */
  get all(): number[] {
    return this.nodes.map((n) => n.index);
  }

  isRunning(i: number): boolean {
    const p = this.#running.get(i);
    return p !== undefined && p.child.exitCode === null && p.child.signalCode === null;
  }

  running(): number[] {
    return this.all.filter((i) => this.isRunning(i));
  }

  pid(i: number): number {
    const p = this.#running.get(i);
    if (!p?.child.pid) throw new Error(`node ${i} is not running`);
    return p.child.pid;
  }

  /** Starts node i with `node start --config`, by the real program or by the copy at `programRoot`. */
  async start(i: number, opts: { programRoot?: string; timeoutMs?: number } = {}): Promise<void> {
    if (this.isRunning(i)) throw new Error(`node ${i} is already running`);
    const node = this.node(i);
    const proc = await startNodeProcess(opts.programRoot ?? ROOT, node.configFile, node.logFile, opts.timeoutMs ?? 30_000);
    this.#running.set(i, proc);
    this.#clients.set(i, new CloisterClient(proc.rpcUrl, { timeoutMs: 10_000 }));
  }

  async startAll(indices: number[] = this.all, opts: { programRoot?: string } = {}): Promise<void> {
    await Promise.all(indices.map((i) => this.start(i, opts)));
  }

  /** SIGKILL (kill -9): no chance to flush or say goodbye. */
  async kill(i: number): Promise<void> {
    const p = this.#running.get(i);
    if (!p) return;
    const { child } = p;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      process.kill(child.pid!, 'SIGKILL');
      await exited;
    }
    this.#running.delete(i);
  }

  /**
   * Sends one signed transaction to node i and SIGKILLs the node the moment it
   * acknowledges it (same tick): the harshest point for "no acknowledged
   * transaction is lost". Returns the acknowledged transaction.
   */
  async killRightAfterAck(i: number): Promise<AckedTx> {
    const signer = new Ed25519Signer(generateEd25519KeyPair().privateKey);
    const tx = signTx({ chainId: this.chainId, from: signer.publicKey, nonce: 0, contract: 'counter', method: 'increment', args: [], gasLimit: 1_000_000 }, signer);
    const child = this.#running.get(i)?.child;
    if (!child) throw new Error(`node ${i} is not running`);
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const hash = await this.client(i).sendTransaction(tx);
    process.kill(child.pid!, 'SIGKILL');
    const at = new Date().toISOString();
    await exited;
    this.#running.delete(i);
    return { hash, node: i, sender: signer.publicKey, nonce: 0, at };
  }

  /** SIGTERM, waiting for the node's orderly stop (SIGKILL after `timeoutMs`). */
  async stop(i: number, timeoutMs = 15_000): Promise<void> {
    const p = this.#running.get(i);
    if (!p) return;
    const { child } = p;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    }
    this.#running.delete(i);
  }

  async restart(i: number, opts: { programRoot?: string; timeoutMs?: number } = {}): Promise<void> {
    await this.stop(i);
    await this.start(i, opts);
  }

  async killAll(): Promise<void> {
    await Promise.all([...this.#running.keys()].map((i) => this.kill(i)));
  }

  /** Node i's JSON-RPC endpoint (while it runs). */
  rpcUrl(i: number): string {
    const p = this.#running.get(i);
    if (!p) throw new Error(`node ${i} is not running`);
    return p.rpcUrl;
  }

  client(i: number): CloisterClient {
    const c = this.#clients.get(i);
    if (!c) throw new Error(`node ${i} was never started`);
    return c;
  }

  height(i: number): Promise<number> {
    return this.client(i).blockNumber();
  }

  heights(indices: number[]): Promise<number[]> {
    return Promise.all(indices.map((i) => this.height(i)));
  }

  async maxHeight(indices: number[]): Promise<number> {
    return Math.max(...(await this.heights(indices)));
  }

  /** Polls node i's JSON-RPC until its committed height is at least h. */
  async waitForHeight(i: number, h: number, timeoutMs = 30_000): Promise<void> {
    let last = -1;
    try {
      await waitUntil(async () => (last = await this.height(i)) >= h, timeoutMs, `node ${i} to reach height ${h}`);
    } catch (err) {
      throw new Error(`${(err as Error).message}; it is at ${last}\n${this.logTail(i, 15)}`);
    }
  }

  async waitForHeights(indices: number[], h: number, timeoutMs = 30_000): Promise<void> {
    await Promise.all(indices.map((i) => this.waitForHeight(i, h, timeoutMs)));
  }

  /** Block hashes of heights from…to (inclusive) on node i; throws if one is missing. */
  async blockHashes(i: number, from: number, to: number): Promise<string[]> {
    const out: string[] = [];
    for (let start = from; start <= to; start += 200) {
      const end = Math.min(to, start + 199);
      const batch = this.client(i).batch();
      const handles = [];
      for (let h = start; h <= end; h++) handles.push(batch.add('chain_getBlockByNumber', h, false));
      const results = await batch.send();
      for (const [k, handle] of handles.entries()) {
        const block = results.value(handle);
        if (!block) throw new Error(`node ${i} has no block at height ${start + k}`);
        out.push(block.hash);
      }
    }
    return out;
  }

  /** `net_nodes` of node i: what it decided about every other validator. */
  async netNodes(i: number): Promise<NetNode[]> {
    return this.client(i).nodes();
  }

  async netNode(i: number, of: number): Promise<NetNode | undefined> {
    const id = this.node(of).nodeId;
    return (await this.netNodes(i)).find((n) => n.id === id);
  }

  /**
   * Block hashes 1…min height are identical on every given node (and so is the
   * genesis). Returns the compared height.
   */
  async assertSameBlocks(indices: number[]): Promise<number> {
    const heights = await this.heights(indices);
    const min = Math.min(...heights);
    if (min < 1) throw new Error(`nothing to compare: heights ${JSON.stringify(heights)} of nodes ${indices.join(', ')}`);
    const chains = await Promise.all(indices.map((i) => this.blockHashes(i, 0, min)));
    const reference = chains[0]!;
    for (const [k, chain] of chains.entries()) {
      const at = chain.findIndex((hash, h) => hash !== reference[h]);
      if (at >= 0) {
        throw new Error(`node ${indices[k]} and node ${indices[0]} differ at height ${at}: ${chain[at]} vs ${reference[at]} (heights ${JSON.stringify(heights)})`);
      }
    }
    return min;
  }

  /** For a failure message: for each sender's first lost transaction, which nodes still hold it and each node's committed nonce. */
  async #whereAre(lost: readonly AckedTx[], indices: number[]): Promise<string> {
    const firstPerSender = new Map<string, AckedTx>();
    for (const t of lost) if (!firstPerSender.has(t.sender) || firstPerSender.get(t.sender)!.nonce > t.nonce) firstPerSender.set(t.sender, t);
    const lines: string[] = [];
    for (const t of firstPerSender.values()) {
      const views = await Promise.all(
        indices.map(async (i) => {
          const client = this.client(i);
          const [held, nonce] = await Promise.all([client.getTransaction(t.hash).catch(() => undefined), client.getNonce(t.sender).catch(() => undefined)]);
          const where = held === undefined ? 'unreachable' : held === null ? 'unknown' : held.blockHeight === null ? 'in its mempool' : `in block ${held.blockHeight}`;
          return `node ${i}: ${where}, committed nonce ${nonce ?? '?'}`;
        }),
      );
      lines.push(`sender ${t.sender.slice(0, 8)}… nonce ${t.nonce}: ${views.join('; ')}`);
    }
    return lines.join('\n');
  }

  /**
   * Every acknowledged transaction has a receipt on every given node (waiting up
   * to `timeoutMs` for the last ones to commit), in the same block everywhere.
   */
  async assertNoLostTxs(acked: readonly AckedTx[], indices: number[], timeoutMs = 30_000): Promise<void> {
    const receipts = new Map<number, Map<string, ReceiptView>>();
    await Promise.all(
      indices.map(async (i) => {
        const found = new Map<string, ReceiptView>();
        receipts.set(i, found);
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const missing = acked.filter((t) => !found.has(t.hash));
          for (let k = 0; k < missing.length; k += 500) {
            const chunk = missing.slice(k, k + 500);
            const batch = this.client(i).batch();
            const handles = chunk.map((t) => batch.add('chain_getTransactionReceipt', t.hash));
            const results = await batch.send();
            for (const [j, handle] of handles.entries()) {
              const r = results.get(handle);
              if (r.ok && r.value) found.set(chunk[j]!.hash, r.value);
            }
          }
          if (found.size === acked.length) return;
          if (Date.now() > deadline) {
            const lost = acked.filter((t) => !found.has(t.hash));
            const sample = lost
              .slice(0, 5)
              .map((t) => `${t.hash} (acknowledged by node ${t.node} at ${t.at}, sender ${t.sender.slice(0, 8)}…, nonce ${t.nonce})`)
              .join('\n  ');
            throw new Error(
              `${lost.length} of ${acked.length} acknowledged transactions have no receipt on node ${i} after ${timeoutMs} ms:\n  ${sample}\n` +
                (await this.#whereAre(lost, indices)),
            );
          }
          await sleep(200);
        }
      }),
    );
    const first = receipts.get(indices[0]!)!;
    for (const i of indices.slice(1)) {
      for (const t of acked) {
        const a = first.get(t.hash)!;
        const b = receipts.get(i)!.get(t.hash)!;
        if (a.blockHash !== b.blockHash || a.index !== b.index || a.status !== b.status) {
          throw new Error(`tx ${t.hash}: node ${indices[0]} has it at ${a.blockHeight}/${a.index} (${a.status}), node ${i} at ${b.blockHeight}/${b.index} (${b.status})`);
        }
      }
    }
  }

  /** The last lines of node i's log (stderr of every run). */
  logTail(i: number, lines = 30): string {
    return `---- node ${i} log (${this.node(i).logFile}):\n${tailOf(this.node(i).logFile, lines)}`;
  }

  /** Every node's log tail, for a failure report. */
  logs(lines = 30): string {
    return this.all.map((i) => this.logTail(i, lines)).join('\n');
  }

  /**
   * Runs `node init --data` with the program at `programRoot` for node i
   * (replacing its enclave identity, which is sealed to the program that made
   * it) and puts the new vote key in the genesis. Only before any node started.
   * Returns what `node init` printed.
   */
  async reprovision(i: number, programRoot: string): Promise<{ nodeId: string; voteKey: string; platform: string; measurement: string }> {
    if (this.#running.size > 0) throw new Error('reprovision before starting any node');
    const config = this.config(i);
    // Both slots of the sealed identity (see node/enclave/sealed-store.ts).
    const sealed = nodePaths(config.dataDir).sealedIdentity;
    for (const file of [sealed, sealed.replace(/\.json$/, '.2.json')]) rmSync(file, { force: true });
    const out = await runProgram(programRoot, ['node', 'init', '--data', config.dataDir, '--virtual-root', config.enclave.virtualRootFile]);
    if (out.code !== 0) throw new Error(`node init by ${programRoot} failed (${out.code}): ${out.stderr}`);
    const provisioned = JSON.parse(out.stdout) as { nodeId: string; voteKey: string; platform: string; measurement: string };
    if (provisioned.nodeId !== config.nodeId) throw new Error(`node init kept no node key: ${provisioned.nodeId} ≠ ${config.nodeId}`);
    const files = new Set(this.all.map((k) => this.config(k).genesisFile));
    files.add(this.genesisFile);
    for (const file of files) {
      const genesis = JSON.parse(readFileSync(file, 'utf8')) as { validators: { nodeId: string; voteKey: string }[] };
      const validator = genesis.validators.find((v) => v.nodeId === config.nodeId);
      if (!validator) throw new Error(`node ${i} is not a validator in ${file}`);
      validator.voteKey = provisioned.voteKey;
      writeFileSync(file, JSON.stringify(genesis, null, 2) + '\n');
    }
    return provisioned;
  }

  /** A copy of node i's data directory as it is now (as `cp -a` makes it: same network key, same sealed enclave identity). */
  backup(i: number): string {
    const dir = makeTempDir(`cloister-backup-${i}-`);
    cpSync(this.config(i).dataDir, dir, { recursive: true });
    return dir;
  }

  /**
   * Starts node i's program on a data directory made by backup(), on other
   * ports, whatever runs as node i meanwhile: the operator mistake the
   * double-sign guard is for. Killed by the cleanup.
   */
  async startFrom(i: number, dataDir: string): Promise<{ client: CloisterClient; pid: number; logFile: string }> {
    const config = this.config(i);
    const [rpcPort, p2pPort] = [await findFreePortRange(1), await findFreePortRange(1)];
    const copy: NodeConfig = {
      ...config,
      dataDir,
      rpc: { ...config.rpc, port: rpcPort },
      p2p: { listen: [`/ip4/127.0.0.1/tcp/${p2pPort}`], peers: config.p2p!.peers },
    };
    const configFile = join(dataDir, 'config.copy.json');
    writeNodeConfig(configFile, copy);
    const logFile = join(this.dir, 'logs', `node-${i}-from-${basename(dataDir)}.log`);
    const proc = await startNodeProcess(ROOT, configFile, logFile, 30_000);
    return { client: new CloisterClient(proc.rpcUrl, { timeoutMs: 10_000 }), pid: proc.child.pid!, logFile };
  }

  /**
   * Prepares one more node as an operator joining the consortium would, with
   * the CLI: `node init` (its network key and enclave vote key) and `node
   * config` (the genesis, its ports, the other nodes as peers). It becomes
   * node n+1 here (start, client, kill work on it); it is a validator only
   * once the members add it. Returns what `node init` printed.
   */
  async provisionNode(): Promise<{ index: number; nodeId: string; voteKey: string; platform: string; measurement: string }> {
    const index = this.nodes.length + 1;
    const dir = join(this.dir, `node-${index}`);
    const [rpcPort, p2pPort] = [await findFreePortRange(1), await findFreePortRange(1)];
    const virtualRoot = this.config(1).enclave.virtualRootFile;
    const init = await runProgram(ROOT, ['node', 'init', '--data', dir, '--virtual-root', virtualRoot]);
    if (init.code !== 0) throw new Error(`node init failed (${init.code}): ${init.stderr}`);
    const provisioned = JSON.parse(init.stdout) as { nodeId: string; voteKey: string; platform: string; measurement: string };
    const configFile = join(dir, 'config.json');
    const peers = this.nodes.flatMap((n) => ['--peer', `/ip4/127.0.0.1/tcp/${n.p2pPort}/p2p/${n.nodeId}`]);
    const level = this.config(1).log.level;
    const args = ['node', 'config', '--data', dir, '--genesis', this.genesisFile, '--rpc-port', String(rpcPort), '--p2p-listen', `/ip4/127.0.0.1/tcp/${p2pPort}`, ...peers];
    const config = await runProgram(ROOT, [...args, '--virtual-root', virtualRoot, '--log-level', level, '--out', configFile]);
    if (config.code !== 0) throw new Error(`node config failed (${config.code}): ${config.stderr}`);
    this.nodes.push({ index, dir, configFile, nodeId: provisioned.nodeId, rpcPort, p2pPort, logFile: join(this.dir, 'logs', `node-${index}.log`) });
    return { index, ...provisioned };
  }

  /** A load generator sending signed `counter.increment` transactions round-robin to the given nodes. */
  load(options: Omit<LoadOptions, 'consortium'> = {}): LoadGenerator {
    return new LoadGenerator({ consortium: this, ...options });
  }
}

// ------------------------------------------------------------------ a modified copy of the program

export interface CliOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `<programRoot>/bin/cloister.js …args` to completion. */
export function runProgram(programRoot: string, args: string[], timeoutMs = 60_000): Promise<CliOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(programRoot, 'bin/cloister.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    liveChildren.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} took more than ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** The enclave program's measurement as the program at `programRoot` computes it. */
export async function measurementOf(programRoot: string): Promise<string> {
  const out = await runProgram(programRoot, ['enclave', 'measure', '--json']);
  if (out.code !== 0) throw new Error(`enclave measure failed: ${out.stderr}`);
  return (JSON.parse(out.stdout) as { measurement: string }).measurement;
}

/**
 * A copy of the compiled program whose enclave differs by one harmless comment
 * line (so its measurement differs): X/dist (copied), X/bin, X/package.json,
 * and X/node_modules → the real node_modules. Returns X.
 */
export function makeModifiedProgram(): string {
  const dir = makeTempDir('cloister-program-');
  if (!existsSync(join(ROOT, 'dist/contracts/enclave/enclave.js'))) throw new Error('dist/ is not built: run npm run build');
  cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true });
  appendFileSync(join(dir, 'dist/contracts/enclave/enclave.js'), '\n// a modified enclave program: same behaviour, another measurement\n');
  cpSync(join(ROOT, 'bin'), join(dir, 'bin'), { recursive: true });
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

// ------------------------------------------------------------------ load

export interface LoadOptions {
  consortium: Consortium;
  /** Nodes to send to, round-robin (default: all); nodes not running are skipped. */
  nodes?: number[];
  /** Concurrent senders, each with its own key and nonce sequence (default 6). */
  senders?: number;
  /** Pause after each send, per sender (default 20 ms). */
  pauseMs?: number;
  /** Per-request timeout (default 5 s). */
  requestTimeoutMs?: number;
}

/**
 * Sends signed `counter.increment` transactions, one at a time per sender, to
 * the nodes round-robin, and records every acknowledged one (answered with its
 * hash, without error). Each nonce gets exactly one signed transaction, kept
 * until it is settled, so the generator itself never makes two transactions
 * compete for a nonce:
 *  - acknowledged → recorded, next nonce;
 *  - TX_DUPLICATE (that node already has it) or TX_NONCE_TOO_LOW (it committed) → next nonce, not recorded;
 *  - anything else (node down, timeout, TX_NONCE_GAP while an earlier one is still
 *    gossiping, a full mempool) → the same transaction again to the next node.
 */
export class LoadGenerator {
  readonly acked: AckedTx[] = [];
  /** Errors by kind (RPC data.code, or the client error kind). */
  readonly errors: Record<string, number> = {};
  #running = false;
  #loops: Promise<void>[] = [];
  #turn = 0;
  readonly #o: Required<Omit<LoadOptions, 'nodes'>> & { nodes: number[] | undefined };
  readonly #clients = new Map<string, CloisterClient>();

  constructor(options: LoadOptions) {
    this.#o = {
      consortium: options.consortium,
      nodes: options.nodes,
      senders: options.senders ?? 6,
      pauseMs: options.pauseMs ?? 20,
      requestTimeoutMs: options.requestTimeoutMs ?? 5000,
    };
  }

  start(): this {
    if (this.#running) return this;
    this.#running = true;
    for (let s = 0; s < this.#o.senders; s++) this.#loops.push(this.#sender(new Ed25519Signer(generateEd25519KeyPair().privateKey)));
    return this;
  }

  /** Stops sending and waits for the requests in flight; returns the acknowledged transactions. */
  async stop(): Promise<AckedTx[]> {
    this.#running = false;
    await Promise.all(this.#loops);
    this.#loops = [];
    return this.acked;
  }

  /** Waits until at least `count` more transactions than now are acknowledged. */
  async waitForMoreAcked(count: number, timeoutMs = 30_000): Promise<void> {
    const target = this.acked.length + count;
    await waitUntil(() => this.acked.length >= target, timeoutMs, `${count} more acknowledged transactions (errors so far: ${JSON.stringify(this.errors)})`);
  }

  #target(): number | undefined {
    const c = this.#o.consortium;
    const candidates = (this.#o.nodes ?? c.all).filter((i) => c.isRunning(i));
    if (candidates.length === 0) return undefined;
    return candidates[this.#turn++ % candidates.length];
  }

  #client(i: number): CloisterClient {
    // A client per node and URL: a restarted node keeps its RPC port, but not necessarily.
    const url = this.#o.consortium.client(i).url;
    let c = this.#clients.get(url);
    if (!c) this.#clients.set(url, (c = new CloisterClient(url, { timeoutMs: this.#o.requestTimeoutMs })));
    return c;
  }

  #count(kind: string): void {
    this.errors[kind] = (this.errors[kind] ?? 0) + 1;
  }

  async #sender(signer: Ed25519Signer): Promise<void> {
    const chainId = this.#o.consortium.chainId;
    let nonce = 0;
    let pending: SignedTx | undefined;
    while (this.#running) {
      const node = this.#target();
      if (node === undefined) {
        await sleep(50);
        continue;
      }
      pending ??= signTx({ chainId, from: signer.publicKey, nonce, contract: 'counter', method: 'increment', args: [], gasLimit: 1_000_000 }, signer);
      try {
        const hash = await this.#client(node).sendTransaction(pending);
        this.acked.push({ hash, node, sender: signer.publicKey, nonce, at: new Date().toISOString() });
        pending = undefined;
        nonce++;
      } catch (err) {
        const code = err instanceof RpcError ? (err.chainCode ?? `rpc ${err.code}`) : `${(err as { kind?: string }).kind ?? 'error'}`;
        this.#count(code);
        if (code === 'TX_DUPLICATE' || code === 'TX_NONCE_TOO_LOW') {
          pending = undefined;
          nonce++;
        } else {
          await sleep(100);
        }
      }
      await sleep(this.#o.pauseMs);
    }
  }
}
