import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PROFILE_DIR_ENV } from './cpu-profile.js';
import { prepareDevnetWithContracts } from './devnet-contracts.js';
import { rpcCall } from './rpc.js';
import { spawnDevnet } from './spawn-devnet.js';
import { spawnDevNode } from './spawn-node.js';

/** The chain under load: one `cloister dev` node or an N-node `cloister devnet`. */
export interface BenchChain {
  /** Node i's JSON-RPC URL at index i - 1. */
  urls: string[];
  /** The development member key, owner of the token contract. */
  memberKeyFile: string;
  /** The chain's genesis (what a client verifies the network encryption key against). */
  genesisFile: string;
  /** What the nodes said last, for a failure report. */
  failureReport(): string;
  stop(): Promise<void>;
}

export interface StartChainOptions {
  root: string;
  nodes: number;
  dataDir: string;
  /**
   * Directory for V8 CPU profiles of every thread of every node process, for
   * the window the caller marks with markProfileWindow (cpu-profile.ts).
   */
  profileDir?: string;
  /** Contract bundle directories to deploy at genesis besides the examples (`cloister dev --contract`). */
  extraContracts?: string[];
  log(msg: string): void;
}

/** What makes a node process (and its worker threads) load the window profiler of cpu-profile.ts. */
function profilerEnv(root: string, profileDir: string): Record<string, string> {
  return {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${pathToFileURL(join(root, 'dist/scripts/bench/cpu-profile.js')).href}`.trim(),
    [PROFILE_DIR_ENV]: profileDir,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function startChain(o: StartChainOptions): Promise<BenchChain> {
  // The dev chain's one member, or the devnet's member-1 (the token's owner).
  const memberKeyFile = join(o.dataDir, o.nodes === 1 ? 'member.json' : 'member-1.json');
  const genesisFile = join(o.dataDir, 'genesis.json');
  const extraContracts = o.extraContracts ?? [];
  if (o.nodes === 1) {
    const contractArgs = extraContracts.length > 0 ? ['--contract', ...extraContracts] : [];
    const node = await spawnDevNode(o.root, o.dataDir, ['--fresh', ...contractArgs], [], o.profileDir ? { ...process.env, ...profilerEnv(o.root, o.profileDir) } : undefined);
    return {
      urls: [node.rpcUrl],
      memberKeyFile,
      genesisFile,
      failureReport: () => `node exit code: ${node.process.exitCode}; its last log lines:\n${node.stderrTail()}`,
      stop: () => node.stop(),
    };
  }
  // `cloister devnet` cannot deploy extra contracts: prepare its directory here with them, and let it resume that.
  if (extraContracts.length > 0) await prepareDevnetWithContracts(o.dataDir, o.nodes, extraContracts);
  const devnet = await spawnDevnet(o.root, {
    nodes: o.nodes,
    dataDir: o.dataDir,
    fresh: extraContracts.length === 0,
    logLevel: process.env.BENCH_NODE_LOG_LEVEL ?? 'warn',
    // The devnet starts its nodes with its own environment, and --cpu-prof is not allowed in NODE_OPTIONS: preload a profiler.
    ...(o.profileDir ? { env: profilerEnv(o.root, o.profileDir) } : {}),
  });
  const chain: BenchChain = {
    urls: devnet.rpcUrls,
    memberKeyFile,
    genesisFile,
    failureReport: () =>
      [
        `devnet exit: ${devnet.process.exitCode ?? devnet.process.signalCode ?? 'running'}; its last lines:\n${devnet.outputTail()}`,
        ...devnet.rpcUrls.map((_, k) => `node-${k + 1}/node.log (last lines):\n${devnet.nodeLogTail(k + 1)}`),
      ].join('\n'),
    stop: () => devnet.stop(),
  };
  o.log(`devnet up: ${devnet.rpcUrls.map((u, k) => `node-${k + 1} ${u} (pid ${devnet.pids[k]})`).join(', ')}`);
  try {
    await waitForConsortium(chain.urls, o.log);
  } catch (err) {
    o.log(chain.failureReport());
    await devnet.stop();
    throw err;
  }
  return chain;
}

interface Status {
  height: number;
  admittedPeers?: number;
  syncing?: boolean;
}

/** Every node admitted every other and committed a block: consensus runs and gossip reaches everyone. */
async function waitForConsortium(urls: string[], log: (msg: string) => void, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last: Status[] = [];
  for (;;) {
    let problem = '';
    try {
      last = await Promise.all(urls.map((url) => rpcCall<Status>(url, 'node_status')));
      if (last.every((s) => s.admittedPeers === urls.length - 1 && s.height >= 1 && !s.syncing)) break;
      problem = JSON.stringify(last.map((s) => ({ height: s.height, admitted: s.admittedPeers })));
    } catch (err) {
      // A node that just started may drop a connection; it counts as not ready yet.
      problem = `${(err as Error).message}${(err as Error).cause instanceof Error ? ` (${((err as Error).cause as Error).message})` : ''}`;
    }
    if (performance.now() > deadline) throw new Error(`the devnet did not form within ${timeoutMs} ms: ${problem}`);
    await sleep(100);
  }
  log(`consortium formed: every node admitted ${urls.length - 1} peers, heights ${last.map((s) => s.height).join('/')}`);
}
