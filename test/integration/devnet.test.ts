import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ed25519Signer, genesisHash } from '../../consensus/index.js';
import { ClientError, CloisterClient } from '../../node/client/index.js';
import { readNodeConfig } from '../../node/config/read-config.js';
import { readGenesisFile } from '../../node/dev/dev-chain.js';
import {
  isAlive,
  nodeConfigFile,
  nodePidFile,
  readPidFile,
  runsDevnet,
  runsNode,
  supervisorPidFile,
  writePidFile,
} from '../../node/devnet/devnet-processes.js';
import { DevnetSetupError, prepareDevnet, type PreparedDevnet } from '../../node/devnet/prepare-devnet.js';
import { stopDevnet } from '../../node/devnet/stop-devnet.js';
import { DevnetSupervisor, DevnetSupervisorError, refuseRunningDevnet, type NodeDeath, type NodeHeight } from '../../node/devnet/supervisor.js';
import { silentLogger } from '../../node/log/logger.js';
import { CLI, ROOT, runCli, tempDir } from '../helpers/dev-node.js';
import { execute } from '../helpers/tx.js';
import { noteBoard } from '../helpers/note-board.js';
import { findFreePortRange } from '../../scripts/bench/free-ports.js';

// Everything this file starts, so afterAll can clean up even after a failed assertion.
const dirs: string[] = [];
const children: ChildProcess[] = [];
const pids = new Set<number>();

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  // Devnet processes are detached: kill them by their pid files too, in case a test failed before they stopped.
  for (const dir of dirs) {
    for (const pidFile of [supervisorPidFile(dir), ...Array.from({ length: 16 }, (_, i) => nodePidFile(dir, i + 1))]) {
      const pid = readPidFile(pidFile);
      if (pid !== undefined) pids.add(pid);
    }
  }
  for (const pid of pids) if (pid > 0 && pid !== process.pid && isAlive(pid)) process.kill(pid, 'SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function newDir(prefix: string): string {
  const dir = tempDir(prefix);
  dirs.push(dir);
  return dir;
}

// ---------------------------------------------------------------------------
// Helpers: waiting on conditions and on printed lines.
// ---------------------------------------------------------------------------

/** Polls a condition (an RPC answer) until it holds; the caller's timeout bounds it. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The stdout lines of a child process, with a way to await a line that matches. */
class Lines {
  readonly all: string[] = [];
  stderr = '';
  #waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void; reject: (e: Error) => void }[] = [];
  #exited: string | undefined;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(child: ChildProcess) {
    let pending = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) this.#add(line);
    });
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-8000)));
    this.exit = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        this.#exited = `exited (${signal ?? code}); stderr: ${this.stderr}`;
        for (const w of this.#waiters) w.reject(new Error(`the process ${this.#exited}\nstdout:\n${this.all.join('\n')}`));
        this.#waiters = [];
        resolve({ code, signal });
      }),
    );
  }

  #add(line: string): void {
    this.all.push(line);
    this.#waiters = this.#waiters.filter((w) => {
      const m = w.re.exec(line);
      if (m) w.resolve(m);
      return !m;
    });
  }

  /** The first line (already printed or still to come) that matches. */
  waitFor(re: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
    for (const line of this.all) {
      const m = re.exec(line);
      if (m) return Promise.resolve(m);
    }
    return this.next(re, timeoutMs);
  }

  /** The next line from now on that matches. */
  next(re: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
    if (this.#exited) return Promise.reject(new Error(`the process ${this.#exited}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms; stdout:\n${this.all.join('\n')}\nstderr: ${this.stderr}`)), timeoutMs);
      this.#waiters.push({
        re,
        resolve: (m) => (clearTimeout(timer), resolve(m)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
  }
}

function startDevnet(args: string[]): { child: ChildProcess; lines: Lines } {
  const child = spawn(process.execPath, [CLI, 'devnet', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return { child, lines: new Lines(child) };
}

// ---------------------------------------------------------------------------
// prepareDevnet, in this process (the enclave workers run from dist/).
// ---------------------------------------------------------------------------

describe('prepareDevnet', () => {
  const dir = newDir('cloister-devnet-prep-');
  let prepared: PreparedDevnet;
  const base = { nodes: 4, dataDir: dir, rpcBasePort: 18545, p2pBasePort: 17701, now: 1_700_000_000_000, log: silentLogger };

  beforeAll(async () => {
    prepared = await prepareDevnet(base);
  }, 120_000);

  it('writes a genesis of the four provisioned nodes, in order', () => {
    expect(prepared.created).toBe(true);
    expect(prepared.genesisFile).toBe(join(dir, 'genesis.json'));
    const genesis = readGenesisFile(prepared.genesisFile);
    expect(genesis.chainId).toBe('cloister-devnet');
    expect(genesis.time).toBe(base.now);
    expect(genesis.validators.map((v) => v.nodeId)).toEqual(prepared.nodes.map((n) => n.nodeId));
    expect(new Set(genesis.validators.map((v) => v.voteKey)).size).toBe(4);
    // One member per node; member-1 owns the example token.
    const members = [1, 2, 3, 4].map((i) => JSON.parse(readFileSync(join(dir, `member-${i}.json`), 'utf8')) as { publicKey: string });
    expect(genesis.members).toEqual(members.map((m, k) => ({ id: `member-${k + 1}`, publicKey: m.publicKey })));
    expect(new Set(members.map((m) => m.publicKey)).size).toBe(4);
    expect(genesis.contracts.map((c) => c.name)).toEqual(['counter', 'token', 'analytics']);
    const root = JSON.parse(readFileSync(join(dir, 'virtual-root.json'), 'utf8')) as { publicKeyPem: string };
    expect(genesis.enclave.virtualRoots).toEqual([root.publicKeyPem]);
    expect(genesis.enclave.measurements.virtual).toHaveLength(1);
    expect(genesis.policy).toMatchObject({ allowedPlatforms: ['virtual'], allowVirtual: true, allowDebug: false });
  });

  it('writes node-i/config.json with ports base+i-1 and every other node as a peer', () => {
    for (const node of prepared.nodes) {
      const i = node.index;
      expect(node.dir).toBe(join(dir, `node-${i}`));
      const config = readNodeConfig(join(dir, `node-${i}`, 'config.json'));
      expect(config.dataDir).toBe(join(dir, `node-${i}`));
      expect(config.nodeId).toBe(node.nodeId);
      expect(config.genesisFile).toBe(join(dir, 'genesis.json'));
      expect(config.rpc).toEqual({ host: '127.0.0.1', port: 18545 + i - 1, corsOrigins: [] });
      expect(config.p2p!.listen).toEqual([`/ip4/127.0.0.1/tcp/${17701 + i - 1}`]);
      const others = prepared.nodes.filter((n) => n.index !== i).map((n) => `/ip4/127.0.0.1/tcp/${17701 + n.index - 1}/p2p/${n.nodeId}`);
      expect(config.p2p!.peers).toEqual(others);
      expect(config.enclave).toEqual({ platform: 'virtual', virtualRootFile: join(dir, 'virtual-root.json') });
      expect(config.log).toEqual({ level: 'info', format: 'json' });
    }
  });

  it('resumes with the same identities and genesis, moving the nodes to the ports asked for', async () => {
    const genesisBefore = readFileSync(prepared.genesisFile, 'utf8');
    const resumed = await prepareDevnet({ ...base, rpcBasePort: 28545, p2pBasePort: 27701, logLevel: 'warn', now: base.now + 1 });
    expect(resumed.created).toBe(false);
    expect(resumed.nodes.map((n) => n.nodeId)).toEqual(prepared.nodes.map((n) => n.nodeId));
    expect(readFileSync(prepared.genesisFile, 'utf8')).toBe(genesisBefore);
    const config = readNodeConfig(join(dir, 'node-2', 'config.json'));
    expect(config.rpc.port).toBe(28546);
    expect(config.p2p!.listen).toEqual(['/ip4/127.0.0.1/tcp/27702']);
    expect(config.p2p!.peers[0]).toBe(`/ip4/127.0.0.1/tcp/27701/p2p/${prepared.nodes[0]!.nodeId}`);
    expect(config.log.level).toBe('warn');
  });

  it('refuses another number of nodes than the devnet has', async () => {
    for (const nodes of [3, 5]) {
      const err = await prepareDevnet({ ...base, nodes }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DevnetSetupError);
      expect((err as DevnetSetupError).code).toBe('DEVNET_SIZE_MISMATCH');
      expect((err as Error).message).toMatch(/holds a devnet of 4 nodes, not \d/);
    }
  });

  it('refuses overlapping port ranges and wiping a directory that is not a devnet', async () => {
    const overlap = await prepareDevnet({ ...base, rpcBasePort: 7000, p2pBasePort: 7003 }).catch((e: unknown) => e);
    expect((overlap as DevnetSetupError).code).toBe('DEVNET_OPTIONS_INVALID');
    const other = newDir('cloister-not-devnet-');
    writeFileSync(join(other, 'precious.txt'), 'keep me');
    const wiped = await prepareDevnet({ ...base, dataDir: other, fresh: true }).catch((e: unknown) => e);
    expect((wiped as DevnetSetupError).code).toBe('DEVNET_NOT_A_DEVNET_DIR');
    expect(existsSync(join(other, 'precious.txt'))).toBe(true);
  });

  it('deploys --contract bundles at genesis; on a resumed devnet it refuses one its genesis did not deploy, naming the command that does', async () => {
    const scratch = newDir('cloister-devnet-contracts-');
    const notes = noteBoard(scratch, 1);
    const withNotes = { ...base, nodes: 1, dataDir: join(scratch, 'devnet'), extraContracts: [notes] };
    const made = await prepareDevnet(withNotes);
    expect(readGenesisFile(made.genesisFile).contracts.map((c) => c.name)).toEqual(['counter', 'token', 'analytics', 'notes']);
    expect((await prepareDevnet(withNotes)).created).toBe(false);
    const edited = await prepareDevnet({ ...withNotes, extraContracts: [noteBoard(scratch, 2)] }).catch((e: unknown) => e);
    expect((edited as DevnetSetupError).code).toBe('DEVNET_CONTRACT_DIFFERS');
    expect((edited as Error).message).toContain(`cloister contract upgrade --rpc http://127.0.0.1:18545 --key ${join(scratch, 'devnet', 'member-1.json')} notes`);
    const other = await prepareDevnet({ ...withNotes, extraContracts: [noteBoard(scratch, 1, 'tally')] }).catch((e: unknown) => e);
    expect((other as Error).message).toContain('cloister contract deploy --rpc');
  }, 120_000);
});

// ---------------------------------------------------------------------------
// DevnetSupervisor with stand-in nodes: process supervision on its own.
// ---------------------------------------------------------------------------

/** A stand-in for `cloister node start`: prints the ready line and answers chain_blockNumber with a growing height. */
const FAKE_NODE = `
import { createServer } from 'node:http';
const mode = process.argv[2];
if (mode === 'crash') {
  console.error('fake node: cannot open the database');
  process.exit(3);
}
let height = 0;
const server = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    const { id } = JSON.parse(body);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ jsonrpc: '2.0', id, result: ++height }));
  });
});
server.listen(0, '127.0.0.1', () => {
  console.log('Fake node ready: JSON-RPC http://127.0.0.1:' + server.address().port + ' (chain fake, height 0)');
});
process.on('SIGTERM', () => {
  if (mode === 'stubborn') console.error('fake node: ignoring SIGTERM');
  else process.exit(0);
});
`;

describe('DevnetSupervisor', () => {
  const dir = newDir('cloister-supervisor-');
  const script = join(dir, 'fake-node.mjs');
  writeFileSync(script, FAKE_NODE);
  const specs = (n: number) =>
    Array.from({ length: n }, (_, k) => {
      const nodeDir = newDir(`cloister-supervisor-node-${k + 1}-`);
      return { index: k + 1, dir: nodeDir, configFile: join(nodeDir, 'config.json') };
    });
  const track = (s: DevnetSupervisor) => {
    for (const n of s.running()) pids.add(n.pid);
    return s;
  };

  it('starts every node, writes pid files, reports heights, reports a death without restarting, and stops the rest', async () => {
    const nodes = specs(3);
    const deaths: NodeDeath[] = [];
    let reportDeath: (d: NodeDeath) => void = () => {};
    const died = new Promise<NodeDeath>((r) => (reportDeath = r));
    const supervisor = new DevnetSupervisor({
      nodes,
      nodeCommand: () => [script, 'ok'],
      onDeath: (d) => {
        deaths.push(d);
        reportDeath(d);
      },
    });
    const running = await supervisor.start();
    track(supervisor);
    expect(running.map((n) => n.index)).toEqual([1, 2, 3]);
    for (const n of running) {
      expect(n.rpcUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(readFileSync(join(nodes[n.index - 1]!.dir, 'node.pid'), 'utf8')).toBe(`${n.pid}\n`);
      expect(isAlive(n.pid)).toBe(true);
      expect(readFileSync(n.logFile, 'utf8')).toMatch(/ready: JSON-RPC/);
    }

    const heights = await new Promise<NodeHeight[]>((resolve) => {
      const unwatch = supervisor.watchHeights((h) => {
        if (h.every((x) => x.height !== null)) {
          unwatch();
          resolve(h);
        }
      }, 20);
    });
    expect(heights.map((h) => h.index)).toEqual([1, 2, 3]);

    const victim = running[1]!;
    process.kill(victim.pid, 'SIGKILL');
    const death = await died;
    expect(death).toMatchObject({ index: 2, pid: victim.pid, code: null, signal: 'SIGKILL', configFile: nodes[1]!.configFile });
    expect(supervisor.running().map((n) => n.index)).toEqual([1, 3]);
    // Not restarted: the next round of heights still has node 2 down.
    const after = await new Promise<NodeHeight[]>((resolve) => {
      const unwatch = supervisor.watchHeights((h) => (unwatch(), resolve(h)), 20);
    });
    expect(after[1]).toEqual({ index: 2, height: null, running: false });

    await supervisor.stop();
    await supervisor.stop(); // idempotent
    expect(deaths).toHaveLength(1);
    for (const n of [running[0]!, running[2]!]) {
      expect(isAlive(n.pid)).toBe(false);
      expect(existsSync(join(nodes[n.index - 1]!.dir, 'node.pid'))).toBe(false);
    }
    // The dead node's pid file is left as it was.
    expect(readFileSync(join(nodes[1]!.dir, 'node.pid'), 'utf8')).toBe(`${victim.pid}\n`);
  });

  it('kills a node that ignores SIGTERM once the stop timeout passes', async () => {
    const nodes = specs(1);
    const supervisor = new DevnetSupervisor({ nodes, nodeCommand: () => [script, 'stubborn'], stopTimeoutMs: 200 });
    const [node] = await supervisor.start();
    track(supervisor);
    await supervisor.stop();
    expect(isAlive(node!.pid)).toBe(false);
    expect(readFileSync(node!.logFile, 'utf8')).toMatch(/ignoring SIGTERM/);
    expect(existsSync(join(nodes[0]!.dir, 'node.pid'))).toBe(false);
  });

  it('fails start with the end of the log of a node that exits before it is ready, and stops the others', async () => {
    const nodes = specs(2);
    let pid1 = 0;
    const supervisor = new DevnetSupervisor({
      nodes,
      nodeCommand: (n) => {
        // The nodes are spawned in order, each pid file written at once: node-1's is there by now.
        if (n.index === 2) pid1 = Number(readFileSync(join(nodes[0]!.dir, 'node.pid'), 'utf8'));
        return [script, n.index === 2 ? 'crash' : 'ok'];
      },
    });
    const err = await supervisor.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DevnetSupervisorError);
    expect((err as DevnetSupervisorError).code).toBe('NODE_EXITED_BEFORE_READY');
    expect((err as Error).message).toMatch(/node-2 exited \(code 3\) before it was ready/);
    expect((err as Error).message).toMatch(/cannot open the database/);
    expect(supervisor.running()).toEqual([]);
    pids.add(pid1);
    expect(pid1).toBeGreaterThan(0);
    expect(isAlive(pid1)).toBe(false);
    expect(existsSync(join(nodes[0]!.dir, 'node.pid'))).toBe(false);
  });

  it('refuses to start over a running node of the same config', async () => {
    const nodes = specs(1);
    const running = await standIn(['node', 'start', '--config', nodes[0]!.configFile]);
    writePidFile(join(nodes[0]!.dir, 'node.pid'), running.pid!);
    const supervisor = new DevnetSupervisor({ nodes, nodeCommand: () => [script, 'ok'] });
    const err = await supervisor.start().catch((e: unknown) => e);
    expect((err as DevnetSupervisorError).code).toBe('NODE_ALREADY_RUNNING');
    expect(isAlive(running.pid!)).toBe(true);
  });

  it('starts over a stale pid file whose pid is now another process, and leaves that process alone', async () => {
    const nodes = specs(1);
    writePidFile(join(nodes[0]!.dir, 'node.pid'), process.pid);
    const supervisor = new DevnetSupervisor({ nodes, nodeCommand: () => [script, 'ok'] });
    const [node] = await supervisor.start();
    track(supervisor);
    expect(readPidFile(join(nodes[0]!.dir, 'node.pid'))).toBe(node!.pid);
    await supervisor.stop();
    expect(isAlive(process.pid)).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// Pid files and `devnet stop`, with stand-in processes whose command lines look like a devnet's.
// ---------------------------------------------------------------------------

/** A process that runs until killed, with `args` on its command line; with `stubborn` it ignores SIGTERM. */
async function standIn(args: string[], options: { stubborn?: boolean; cwd?: string } = {}): Promise<ChildProcess> {
  const code = `process.on('SIGTERM', () => { if (!${options.stubborn === true}) process.exit(0); }); setInterval(() => {}, 1e9); console.log('ready');`;
  const child = spawn(process.execPath, ['-e', code, '--', ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd ?? ROOT });
  children.push(child);
  pids.add(child.pid!);
  // Its SIGTERM handler is in place once it says so.
  await new Lines(child).waitFor(/^ready$/, 10_000);
  return child;
}

/** A pid that is surely not running: the pid of a process that has exited and been reaped. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('close', resolve));
  return child.pid!;
}

function devnetDir(nodes: number): string {
  const dir = newDir('cloister-devnet-pids-');
  for (let i = 1; i <= nodes; i++) mkdirSync(join(dir, `node-${i}`));
  return dir;
}

describe('devnet pid files and stopDevnet (stand-in processes)', () => {
  it('recognises node and devnet command lines, and nothing else', () => {
    const dir = '/srv/chain/.cloister-devnet';
    const config = nodeConfigFile(dir, 2);
    expect(runsNode(['/usr/bin/node', '/x/dist/node/devnet/supervised-node.js', 'node', 'start', '--config', config], config)).toBe(true);
    expect(runsNode(['node', '/x/bin/cloister.js', 'node', 'start', `--config=${config}`], config)).toBe(true);
    expect(runsNode(['node', '/x/bin/cloister.js', 'node', 'start', '--config', nodeConfigFile(dir, 1)], config)).toBe(false);
    expect(runsNode(['sleep', '100'], config)).toBe(false);
    expect(runsDevnet(['node', '/x/bin/cloister.js', 'devnet', '--nodes', '2', '--data', dir], dir, undefined)).toBe(true);
    expect(runsDevnet(['node', 'bin/cloister.js', 'devnet', '--nodes', '4'], dir, '/srv/chain')).toBe(true);
    expect(runsDevnet(['node', '/x/node_modules/.bin/cloister', 'devnet', '--data=.cloister-devnet'], dir, '/srv/chain')).toBe(true);
    expect(runsDevnet(['node', 'bin/cloister.js', 'devnet'], dir, '/home/other')).toBe(false);
    expect(runsDevnet(['node', 'bin/cloister.js', 'devnet'], dir, undefined)).toBe(false);
    expect(runsDevnet(['node', '/x/bin/cloister.js', 'devnet', 'stop', '--data', dir], dir, undefined)).toBe(false);
    expect(runsDevnet(['node', '/x/other.js', 'devnet', '--data', dir], dir, undefined)).toBe(false);
  });

  it('stops the nodes with SIGTERM, SIGKILLs one that ignores it after the grace period, and removes the pid files', async () => {
    const dir = devnetDir(2);
    const obedient = await standIn(['node', 'start', '--config', nodeConfigFile(dir, 1)]);
    const stubborn = await standIn(['node', 'start', '--config', nodeConfigFile(dir, 2)], { stubborn: true });
    writePidFile(nodePidFile(dir, 1), obedient.pid!);
    writePidFile(nodePidFile(dir, 2), stubborn.pid!);
    const gone = await deadPid();
    writePidFile(supervisorPidFile(dir), gone);

    // The grace period is generous so that the obedient one has exited long before it ends, however busy the machine.
    const outcome = await stopDevnet(dir, { graceMs: 3000 });
    expect(outcome.stopped).toEqual([
      { name: 'node-1', pid: obedient.pid, how: 'SIGTERM' },
      { name: 'node-2', pid: stubborn.pid, how: 'SIGKILL' },
    ]);
    expect(outcome.stale).toEqual([{ name: 'devnet', pid: gone, pidFile: supervisorPidFile(dir) }]);
    expect(outcome.failed).toEqual([]);
    expect(isAlive(obedient.pid!)).toBe(false);
    expect(isAlive(stubborn.pid!)).toBe(false);
    for (const file of [supervisorPidFile(dir), nodePidFile(dir, 1), nodePidFile(dir, 2)]) expect(existsSync(file)).toBe(false);
  });

  it('leaves alone a process that now has a pid file\'s pid, and removes the stale file', async () => {
    const dir = devnetDir(1);
    const stranger = await standIn(['some', 'other', 'program']);
    writePidFile(nodePidFile(dir, 1), stranger.pid!);
    writePidFile(supervisorPidFile(dir), process.pid);
    expect(() => refuseRunningDevnet(dir)).not.toThrow();

    const outcome = await stopDevnet(dir, { graceMs: 3000 });
    expect(outcome.stopped).toEqual([]);
    expect(outcome.stale.map((s) => [s.name, s.pid])).toEqual([
      ['devnet', process.pid],
      ['node-1', stranger.pid],
    ]);
    expect(outcome.stale[1]!.otherProcess).toMatch(/-- some other program$/);
    expect(isAlive(stranger.pid!)).toBe(true);
    expect(isAlive(process.pid)).toBe(true);
    expect(existsSync(nodePidFile(dir, 1))).toBe(false);
    expect(existsSync(supervisorPidFile(dir))).toBe(false);
  });

  it('finds the devnet by its command line, --data relative to its working directory, refuses a second one, and stops it', async () => {
    const dir = devnetDir(1);
    const supervisor = await standIn([join(ROOT, 'bin', 'cloister.js'), 'devnet', '--nodes', '1', '--data', basename(dir)], { cwd: dirname(dir) });
    writePidFile(supervisorPidFile(dir), supervisor.pid!);
    const refused = (() => {
      try {
        refuseRunningDevnet(dir);
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect((refused as DevnetSupervisorError).code).toBe('DEVNET_ALREADY_RUNNING');

    const outcome = await stopDevnet(dir, { graceMs: 3000 });
    expect(outcome.stopped).toEqual([{ name: 'devnet', pid: supervisor.pid, how: 'SIGTERM' }]);
    expect(isAlive(supervisor.pid!)).toBe(false);
  });
});

// ---------------------------------------------------------------------------
// `cloister devnet`: real node processes.
// ---------------------------------------------------------------------------

const NODE_LINE = /^node-(\d+) {2}(http:\/\/\S+) {2}pid (\d+) {2}id (\S+)$/;

describe('cloister devnet --nodes 4', () => {
  const dir = newDir('cloister-devnet-');
  let rpcBase: number;
  let devnet: { child: ChildProcess; lines: Lines };
  const nodes: { index: number; url: string; pid: number; id: string; client: CloisterClient }[] = [];

  beforeAll(async () => {
    const rpc = await findFreePortRange(8);
    const p2p = rpc + 4;
    rpcBase = rpc;
    devnet = startDevnet(['--nodes', '4', '--data', dir, '--rpc-base-port', String(rpc), '--p2p-base-port', String(p2p), '--log-level', 'warn']);
    await devnet.lines.waitFor(/^node-4 /, 150_000);
    for (const line of devnet.lines.all) {
      const m = NODE_LINE.exec(line);
      if (!m) continue;
      nodes.push({ index: Number(m[1]), url: m[2]!, pid: Number(m[3]), id: m[4]!, client: new CloisterClient(m[2]!, { timeoutMs: 5000 }) });
      pids.add(Number(m[3]));
    }
  }, 180_000);

  it('prints the genesis file, chain id and genesis hash, and one line per node', () => {
    const genesis = readGenesisFile(join(dir, 'genesis.json'));
    expect(devnet.lines.all).toContain(`genesis  ${join(dir, 'genesis.json')}`);
    expect(devnet.lines.all).toContain('chain    cloister-devnet');
    expect(devnet.lines.all).toContain(`hash     ${genesisHash(genesis)}`);
    expect(nodes.map((n) => n.index)).toEqual([1, 2, 3, 4]);
    expect(nodes.map((n) => n.id)).toEqual(genesis.validators.map((v) => v.nodeId));
    for (const n of nodes) expect(n.url).toBe(`http://127.0.0.1:${rpcBase + n.index - 1}`);
  });

  it('keeps config.json and node.pid in node-i/, and every pid is a live process', () => {
    for (const n of nodes) {
      const nodeDir = join(dir, `node-${n.index}`);
      expect(readNodeConfig(join(nodeDir, 'config.json')).rpc.port).toBe(rpcBase + n.index - 1);
      expect(readFileSync(join(nodeDir, 'node.pid'), 'utf8').trim()).toBe(String(n.pid));
      expect(isAlive(n.pid)).toBe(true);
    }
  });

  it('every node answers chain_blockNumber on its port, and the height grows on all of them', async () => {
    const start = await Promise.all(nodes.map((n) => n.client.blockNumber()));
    await until('every node to commit two more blocks', async () => {
      const now = await Promise.all(nodes.map((n) => n.client.blockNumber()));
      return now.every((h, k) => h >= start[k]! + 2);
    });
    await devnet.lines.waitFor(/^height \d+ {2}\[node-1 \d+, node-2 \d+, node-3 \d+, node-4 \d+\]$/, 10_000);
  }, 60_000);

  it("every node's node_status shows the genesis hash `cloister genesis hash` prints for the devnet's genesis", async () => {
    const printed = (await runCli(['genesis', 'hash', join(dir, 'genesis.json')])).stdout.trim();
    for (const n of nodes) expect((await n.client.status()).genesisHash).toBe(printed);
  });

  it('a transaction sent to node-1 is committed and its receipt is visible on node-4', async () => {
    const member = JSON.parse(readFileSync(join(dir, 'member-1.json'), 'utf8')) as { privateKey: string };
    const signer = new Ed25519Signer(member.privateKey);
    const receipt = await execute(nodes[0]!.client, signer, 'counter', 'increment');
    expect(receipt.status).toBe('success');
    const seen = await nodes[3]!.client.waitForReceipt(receipt.txHash, { timeoutMs: 20_000, pollMs: 50 });
    expect(seen).toMatchObject({ status: 'success', blockHeight: receipt.blockHeight, blockHash: receipt.blockHash });
    expect((await nodes[3]!.client.call('counter', 'get', [])).result).toBe(receipt.result);
  }, 60_000);

  it('refuses to start a second devnet on the same directory, even with --fresh, and changes nothing', async () => {
    const genesisBefore = readFileSync(join(dir, 'genesis.json'), 'utf8');
    const configBefore = readFileSync(join(dir, 'node-1', 'config.json'), 'utf8');
    const second = await runCli(['devnet', '--nodes', '4', '--data', dir, '--rpc-base-port', '1024', '--p2p-base-port', '2048', '--fresh']);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`a devnet is already running in ${dir} (pid ${devnet.child.pid} in ${supervisorPidFile(dir)})`);
    expect(readFileSync(join(dir, 'genesis.json'), 'utf8')).toBe(genesisBefore);
    expect(readFileSync(join(dir, 'node-1', 'config.json'), 'utf8')).toBe(configBefore);
  });

  it('reports node-3 killed with SIGKILL, does not restart it, and the other three go on', async () => {
    const victim = nodes[2]!;
    process.kill(victim.pid, 'SIGKILL');
    const configFile = join(dir, 'node-3', 'config.json');
    await devnet.lines.next(
      new RegExp(`^node-3 \\(pid ${victim.pid}\\) exited \\(signal SIGKILL\\); not restarting it\\. Restart it by hand: cloister node start --config ${escape(configFile)}`),
      15_000,
    );
    // 3 of 4 validators are still a quorum, so heights go on being printed, with node-3 down.
    await devnet.lines.next(/^height \d+ {2}\[node-1 \d+, node-2 \d+, node-3 down, node-4 \d+\]$/, 20_000);
    expect(isAlive(victim.pid)).toBe(false);
    expect(readFileSync(join(dir, 'node-3', 'node.pid'), 'utf8').trim()).toBe(String(victim.pid));
    const answer = await victim.client.blockNumber().catch((e: unknown) => e);
    expect(answer).toBeInstanceOf(ClientError);
  }, 60_000);

  it('SIGTERM stops every remaining node, removes their pid files and exits 0', async () => {
    devnet.child.kill('SIGTERM');
    const { code } = await devnet.lines.exit;
    expect(code).toBe(0);
    for (const n of nodes.filter((x) => x.index !== 3)) {
      expect(isAlive(n.pid)).toBe(false);
      expect(existsSync(join(dir, `node-${n.index}`, 'node.pid'))).toBe(false);
    }
    expect(existsSync(supervisorPidFile(dir))).toBe(false);
  }, 30_000);
});

describe('cloister devnet --nodes 1', () => {
  it('prints its node, reports the node killed, and stops with status 1 once no node is left', async () => {
    const dir = newDir('cloister-devnet-one-');
    const rpc = await findFreePortRange(2);
    const p2p = rpc + 1;
    const { lines } = startDevnet(['--nodes', '1', '--data', dir, '--rpc-base-port', String(rpc), '--p2p-base-port', String(p2p), '--log-level', 'warn']);
    const m = NODE_LINE.exec((await lines.waitFor(/^node-1 /, 90_000)).input)!;
    const pid = Number(m[3]);
    pids.add(pid);
    expect(m[2]).toBe(`http://127.0.0.1:${rpc}`);
    process.kill(pid, 'SIGKILL');
    await lines.waitFor(new RegExp(`^node-1 \\(pid ${pid}\\) exited \\(signal SIGKILL\\); not restarting it`), 15_000);
    await lines.waitFor(/^every node has exited; stopping the devnet$/, 5_000);
    expect((await lines.exit).code).toBe(1);
  }, 120_000);
});

describe('cloister devnet --nodes 2: the terminal closes, devnet stop, the devnet killed', () => {
  const dir = newDir('cloister-devnet-stop-');
  let args: string[];

  beforeAll(async () => {
    const rpc = await findFreePortRange(4);
    args = ['--nodes', '2', '--data', dir, '--rpc-base-port', String(rpc), '--p2p-base-port', String(rpc + 2), '--log-level', 'warn'];
  });

  /** Starts `cloister devnet` and waits until both nodes are ready; returns it with the nodes' pids. */
  async function startTwo(): Promise<{ devnet: { child: ChildProcess; lines: Lines }; nodePids: number[] }> {
    const devnet = startDevnet(args);
    await devnet.lines.waitFor(/^node-2 /, 150_000);
    const nodePids = devnet.lines.all.map((line) => NODE_LINE.exec(line)).filter((m) => m !== null).map((m) => Number(m[3]));
    for (const pid of nodePids) pids.add(pid);
    expect(nodePids).toHaveLength(2);
    expect(readPidFile(supervisorPidFile(dir))).toBe(devnet.child.pid);
    return { devnet, nodePids };
  }

  const pidFiles = (): string[] => [supervisorPidFile(dir), nodePidFile(dir, 1), nodePidFile(dir, 2)];

  it('SIGHUP (the terminal closed) stops every node like Ctrl-C, removes the pid files and exits 0', async () => {
    const { devnet, nodePids } = await startTwo();
    devnet.child.kill('SIGHUP');
    expect((await devnet.lines.exit).code).toBe(0);
    expect(devnet.lines.all).toContain('SIGHUP: stopping the devnet');
    for (const pid of nodePids) expect(isAlive(pid)).toBe(false);
    for (const file of pidFiles()) expect(existsSync(file)).toBe(false);
  }, 180_000);

  it('`cloister devnet stop --data DIR` stops a devnet running in the background and says what it stopped', async () => {
    // As `cloister devnet … &` from a shell that then goes away: its own session, no output anyone reads.
    const background = spawn(process.execPath, [CLI, 'devnet', ...args], { detached: true, stdio: 'ignore' });
    children.push(background);
    pids.add(background.pid!);
    await until('both nodes to write their pid files', async () => readPidFile(nodePidFile(dir, 1)) !== undefined && readPidFile(nodePidFile(dir, 2)) !== undefined, 150_000);
    const [n1, n2] = [readPidFile(nodePidFile(dir, 1))!, readPidFile(nodePidFile(dir, 2))!];
    pids.add(n1).add(n2);
    const config = readNodeConfig(nodeConfigFile(dir, 2));
    await until('node-2 to serve', async () => (await new CloisterClient(`http://127.0.0.1:${config.rpc.port}`).blockNumber()) >= 0, 150_000);

    const out = await runCli(['devnet', 'stop', '--data', dir]);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(out.stdout.trim().split('\n')).toEqual([
      `devnet (pid ${background.pid}): stopped (SIGTERM)`,
      `node-1 (pid ${n1}): stopped by the devnet`,
      `node-2 (pid ${n2}): stopped by the devnet`,
    ]);
    for (const pid of [background.pid!, n1, n2]) expect(isAlive(pid)).toBe(false);
    for (const file of pidFiles()) expect(existsSync(file)).toBe(false);

    const again = await runCli(['devnet', 'stop', '--data', dir]);
    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toBe(`nothing of a devnet is running in ${dir}`);
  }, 180_000);

  it('a devnet killed with SIGKILL: its nodes stop by themselves, and devnet stop clears the stale pid files', async () => {
    const { devnet, nodePids } = await startTwo();
    devnet.child.kill('SIGKILL');
    await devnet.lines.exit;
    // Their stdin pipe from the devnet closed: each stops as on SIGTERM.
    await until('the nodes to exit', async () => nodePids.every((pid) => !isAlive(pid)), 30_000);

    const out = await runCli(['devnet', 'stop', '--data', dir]);
    expect(out.code).toBe(0);
    expect(out.stdout.trim().split('\n')).toEqual([
      `devnet: removed the stale devnet.pid (pid ${devnet.child.pid} is not running)`,
      `node-1: removed the stale node-1/node.pid (pid ${nodePids[0]} is not running)`,
      `node-2: removed the stale node-2/node.pid (pid ${nodePids[1]} is not running)`,
      `nothing of a devnet is running in ${dir}`,
    ]);
    for (const file of pidFiles()) expect(existsSync(file)).toBe(false);
  }, 180_000);
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
