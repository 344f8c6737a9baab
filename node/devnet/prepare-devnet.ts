import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  DEFAULT_CONSENSUS_PARAMS,
  generateEd25519KeyPair,
  parseGenesis,
  type Genesis,
} from '../../consensus/index.js';
import type { NodeConfig } from '../config/node-config.js';
import { readNodeConfig, writeNodeConfig } from '../config/read-config.js';
import { exampleContracts, readGenesisFile, withExtraContracts } from '../dev/dev-chain.js';
import { bundleMeasurement, loadBundleFromDir, parseManifest } from '../../contracts/index.js';
import { provisionNode } from '../enclave/provision.js';
import { loadOrCreateVirtualRoot } from '../enclave/virtual-platform.js';
import { readKeyFile, writeKeyFile } from '../keys/key-file.js';
import type { Logger, LogLevel } from '../log/logger.js';

export const DEVNET_CHAIN_ID = 'cloister-devnet';
/** Above this a laptop runs out of cores long before the devnet says anything interesting. */
export const MAX_DEVNET_NODES = 16;

export type DevnetSetupErrorCode =
  | 'DEVNET_OPTIONS_INVALID'
  | 'DEVNET_SIZE_MISMATCH'
  | 'DEVNET_INCOMPLETE'
  | 'DEVNET_NOT_A_DEVNET_DIR'
  | 'DEVNET_MEASUREMENT_MISMATCH'
  | 'DEVNET_CONTRACT_DIFFERS';

export class DevnetSetupError extends Error {
  override readonly name = 'DevnetSetupError';
  constructor(
    readonly code: DevnetSetupErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface PrepareDevnetOptions {
  nodes: number;
  dataDir: string;
  /** Node i serves JSON-RPC on rpcBasePort + i - 1. */
  rpcBasePort: number;
  /** Node i listens for peers on p2pBasePort + i - 1. */
  p2pBasePort: number;
  /** JSON-RPC listen address; default 127.0.0.1 (and the stored one when resuming). */
  rpcHost?: string;
  /** Wipe the directory first. */
  fresh?: boolean;
  /** Genesis time; the caller passes the clock's reading. */
  now: number;
  log: Logger;
  /** The nodes' log level; default info (and the stored one when resuming). */
  logLevel?: LogLevel;
  /** Extra contract bundle directories deployed at genesis (a new devnet); on a resumed one each must be the one its genesis deployed. */
  extraContracts?: string[];
}

export interface DevnetNode {
  /** 1-based, as in `node-i`. */
  index: number;
  dir: string;
  configFile: string;
  nodeId: string;
  rpcPort: number;
  p2pPort: number;
}

export interface PreparedDevnet {
  /** False when an existing devnet was resumed. */
  created: boolean;
  genesisFile: string;
  nodes: DevnetNode[];
}

/** Where the devnet keeps what its nodes share, and each node's own directory. */
export function devnetPaths(dataDir: string): { genesis: string; virtualRoot: string; member(index: number): string; node(index: number): string } {
  const dir = resolve(dataDir);
  return {
    genesis: join(dir, 'genesis.json'),
    virtualRoot: join(dir, 'virtual-root.json'),
    member: (index) => join(dir, `member-${index}.json`),
    node: (index) => join(dir, `node-${index}`),
  };
}

/**
 * Prepares a local consortium of `nodes` validators in one directory: a shared
 * virtual vendor root, one member key per node (member-i.json; member-1 owns
 * the example token; a strict majority of them decides), one data directory and
 * config.json per node (`node-i/`), and a genesis listing every node. An
 * existing devnet of the same size is resumed (its configs get the requested
 * ports); `fresh` wipes the directory first.
 */
export async function prepareDevnet(opts: PrepareDevnetOptions): Promise<PreparedDevnet> {
  checkOptions(opts);
  const paths = devnetPaths(opts.dataDir);
  if (opts.fresh) wipe(resolve(opts.dataDir), paths);
  mkdirSync(resolve(opts.dataDir), { recursive: true });
  // genesis.json is written last, so its presence means the devnet was made completely.
  if (existsSync(paths.genesis)) {
    await checkExtraContracts(opts, paths);
    return resume(opts, paths);
  }
  return create(opts, paths);
}

function checkOptions(opts: PrepareDevnetOptions): void {
  const fail = (why: string): never => {
    throw new DevnetSetupError('DEVNET_OPTIONS_INVALID', why);
  };
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > MAX_DEVNET_NODES) fail(`the number of nodes must be 1..${MAX_DEVNET_NODES}`);
  const range = (base: number, what: string): [number, number] => {
    if (!Number.isInteger(base) || base < 1 || base + opts.nodes - 1 > 65535) fail(`${what} ${base}..${base + opts.nodes - 1} is not a range of TCP ports`);
    return [base, base + opts.nodes - 1];
  };
  const [rpcLo, rpcHi] = range(opts.rpcBasePort, 'the JSON-RPC port range');
  const [p2pLo, p2pHi] = range(opts.p2pBasePort, 'the p2p port range');
  if (rpcLo <= p2pHi && p2pLo <= rpcHi) fail(`the JSON-RPC ports ${rpcLo}..${rpcHi} overlap the p2p ports ${p2pLo}..${p2pHi}`);
}

/** `--fresh` deletes a whole directory: refuse one that holds something other than a devnet (a typo in --data). */
function wipe(dir: string, paths: ReturnType<typeof devnetPaths>): void {
  if (!existsSync(dir)) return;
  const looksLikeDevnet = existsSync(paths.genesis) || existsSync(paths.virtualRoot) || readdirSync(dir).length === 0;
  if (!looksLikeDevnet) {
    throw new DevnetSetupError('DEVNET_NOT_A_DEVNET_DIR', `${dir} does not look like a devnet directory (no genesis.json or virtual-root.json); not wiping it`);
  }
  rmSync(dir, { recursive: true, force: true });
}

function nodeConfig(opts: PrepareDevnetOptions, paths: ReturnType<typeof devnetPaths>, index: number, ids: string[], stored?: NodeConfig): NodeConfig {
  const p2pPort = (i: number): number => opts.p2pBasePort + i - 1;
  return {
    dataDir: paths.node(index),
    nodeId: ids[index - 1]!,
    genesisFile: paths.genesis,
    rpc: {
      host: opts.rpcHost ?? stored?.rpc.host ?? '127.0.0.1',
      port: opts.rpcBasePort + index - 1,
      // Kept across resumes: a developer may have added a browser origin by hand.
      corsOrigins: stored?.rpc.corsOrigins ?? [],
    },
    p2p: {
      listen: [`/ip4/127.0.0.1/tcp/${p2pPort(index)}`],
      peers: ids.flatMap((id, k) => (k + 1 === index ? [] : [`/ip4/127.0.0.1/tcp/${p2pPort(k + 1)}/p2p/${id}`])),
    },
    enclave: { platform: 'virtual', virtualRootFile: paths.virtualRoot },
    // JSON, because the devnet sends the nodes' output to node.log files that tools read.
    log: { level: opts.logLevel ?? stored?.log.level ?? 'info', format: 'json' },
  };
}

function describeNodes(opts: PrepareDevnetOptions, paths: ReturnType<typeof devnetPaths>, ids: string[]): DevnetNode[] {
  return ids.map((nodeId, k) => ({
    index: k + 1,
    dir: paths.node(k + 1),
    configFile: join(paths.node(k + 1), 'config.json'),
    nodeId,
    rpcPort: opts.rpcBasePort + k,
    p2pPort: opts.p2pBasePort + k,
  }));
}

/**
 * `--contract DIR` on a devnet that exists: each bundle must be the one its
 * genesis deployed, or the devnet would run other code than the developer
 * edited without a word. (A bundle upgraded by governance since is compared
 * with the genesis's too: deploy and upgrade at runtime with `cloister
 * contract deploy|upgrade`, without --contract.)
 */
async function checkExtraContracts(opts: PrepareDevnetOptions, paths: ReturnType<typeof devnetPaths>): Promise<void> {
  const genesis = readGenesisFile(paths.genesis);
  const rpc = `http://127.0.0.1:${opts.rpcBasePort}`;
  const member = join(resolve(opts.dataDir), 'member-1.json');
  for (const dir of opts.extraContracts ?? []) {
    const bundle = await loadBundleFromDir(dir);
    const name = bundle.manifest.name;
    const deployed = genesis.contracts.find((c) => c.name === name);
    const how = deployed
      ? `upgrade it while the devnet runs: \`cloister contract upgrade --rpc ${rpc} --key ${member} ${name} ${dir}\` (with a majority of the members' votes)`
      : `deploy it while the devnet runs: \`cloister contract deploy --rpc ${rpc} --key ${member} ${dir}\` (with a majority of the members' votes)`;
    if (!deployed || bundleMeasurement({ manifest: parseManifest(deployed.manifest), code: deployed.code }) !== bundleMeasurement(bundle)) {
      throw new DevnetSetupError(
        'DEVNET_CONTRACT_DIFFERS',
        `contract "${name}" in ${dir} is not the one the devnet in ${resolve(opts.dataDir)} deployed at genesis: ${how}, or start a new devnet with --fresh`,
      );
    }
  }
}

/**
 * Resumes a devnet made earlier. The configs are rewritten with the ports asked
 * for now, so `cloister node start --config` by hand starts a node where the
 * devnet said it would be.
 */
function resume(opts: PrepareDevnetOptions, paths: ReturnType<typeof devnetPaths>): PreparedDevnet {
  const genesis = readGenesisFile(paths.genesis);
  const count = genesis.validators.length;
  if (count !== opts.nodes) {
    throw new DevnetSetupError(
      'DEVNET_SIZE_MISMATCH',
      `${resolve(opts.dataDir)} holds a devnet of ${count} node${count === 1 ? '' : 's'}, not ${opts.nodes}: use --nodes ${count}, or --fresh to start a new one`,
    );
  }
  const ids = genesis.validators.map((v) => v.nodeId);
  for (let i = 1; i <= count; i++) {
    const file = join(paths.node(i), 'config.json');
    if (!existsSync(file)) {
      throw new DevnetSetupError('DEVNET_INCOMPLETE', `${file} is missing; start a new devnet with --fresh`);
    }
    const stored = readNodeConfig(file);
    if (stored.nodeId !== ids[i - 1]) {
      throw new DevnetSetupError('DEVNET_INCOMPLETE', `${file} names node ${stored.nodeId}, but the genesis lists ${ids[i - 1]} as node ${i}; start a new devnet with --fresh`);
    }
    writeNodeConfig(file, nodeConfig(opts, paths, i, ids, stored));
  }
  return { created: false, genesisFile: paths.genesis, nodes: describeNodes(opts, paths, ids) };
}

async function create(opts: PrepareDevnetOptions, paths: ReturnType<typeof devnetPaths>): Promise<PreparedDevnet> {
  const root = loadOrCreateVirtualRoot(paths.virtualRoot);
  const indices = Array.from({ length: opts.nodes }, (_, k) => k + 1);
  // One member per node, as a consortium of N organisations each running one node would have.
  const members = indices.map((i) => {
    if (!existsSync(paths.member(i))) writeKeyFile(paths.member(i), generateEd25519KeyPair());
    return { id: `member-${i}`, publicKey: readKeyFile(paths.member(i)).publicKey };
  });
  // In parallel: each provisioning starts an enclave worker for a moment. Idempotent,
  // so keys left by an interrupted earlier attempt are kept.
  const provisioned = await Promise.all(
    indices.map((i) =>
      provisionNode({ dataDir: paths.node(i), enclave: { platform: 'virtual', virtualRootFile: paths.virtualRoot } }, opts.log.child({ node: i })),
    ),
  );
  const measurement = provisioned[0]!.measurement;
  // Every node runs the same compiled enclave program; a difference means dist/ changed under us.
  if (provisioned.some((p) => p.measurement !== measurement)) {
    throw new DevnetSetupError('DEVNET_MEASUREMENT_MISMATCH', 'the nodes measured different enclave programs; rebuild (npm run build) and try again');
  }
  const ids = provisioned.map((p) => p.nodeId);
  const genesis: Genesis = {
    chainId: DEVNET_CHAIN_ID,
    time: opts.now,
    members,
    validators: provisioned.map((p) => ({ nodeId: p.nodeId, voteKey: p.voteKey })),
    contracts: await withExtraContracts(await exampleContracts(members[0]!.publicKey), opts.extraContracts ?? []),
    enclave: { measurements: { virtual: [measurement] }, virtualRoots: [root.publicKeyPem] },
    // As in the dev chain: only the virtual platform, only this enclave program.
    policy: { allowedPlatforms: ['virtual'], allowVirtual: true, allowDebug: false, measurements: { virtual: [measurement] } },
    consensus: { ...DEFAULT_CONSENSUS_PARAMS },
  };
  const checked = parseGenesis(genesis);
  for (const i of indices) writeNodeConfig(join(paths.node(i), 'config.json'), nodeConfig(opts, paths, i, ids));
  writeFileSync(paths.genesis, JSON.stringify(checked, null, 2) + '\n');
  return { created: true, genesisFile: paths.genesis, nodes: describeNodes(opts, paths, ids) };
}
