import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { provisionNode } from '../enclave/provision.js';
import { ConfigError, readNodeConfig, writeNodeConfig } from '../config/read-config.js';
import { nodePaths, type NodeConfig } from '../config/node-config.js';
import { readGenesisFile } from '../dev/dev-chain.js';
import { createLogger } from '../log/logger.js';
import { CliError, collect } from './errors.js';
import { runNode } from './run-node.js';
import { registerHandoverCommands } from './handover-command.js';

export function registerNodeCommand(program: Command): void {
  const node = program.command('node').description('prepare or run a node of a consortium');
  registerHandoverCommands(node);
  node
    .command('init')
    .description("make a node's network key and its enclave's sealed vote key; prints the node id and vote key for `cloister genesis --node`")
    .requiredOption('--data <dir>', "the node's data directory")
    .option('--virtual-root <file>', 'the virtual vendor root key file (virtual platform)', 'virtual-root.json')
    .action(async (opts: { data: string; virtualRoot: string }) => {
      const dataDir = resolve(opts.data);
      const log = createLogger({ level: 'warn', format: 'json' });
      const provisioned = await provisionNode({ dataDir, enclave: { platform: 'virtual', virtualRootFile: resolve(opts.virtualRoot) } }, log);
      process.stdout.write(JSON.stringify(provisioned, null, 2) + '\n');
    });
  node
    .command('config')
    .description("write a node's config.json: its data directory (made by `node init`), the genesis, JSON-RPC and libp2p addresses")
    .requiredOption('--data <dir>', "the node's data directory (after `cloister node init`)")
    .requiredOption('--genesis <file>', 'the genesis document')
    .option('--rpc-port <n>', 'JSON-RPC port (0 picks a free one)', parsePort, 8545)
    .option('--rpc-host <host>', 'JSON-RPC listen address', '127.0.0.1')
    .option('--p2p-listen <multiaddr>', 'a libp2p listen address, e.g. /ip4/0.0.0.0/tcp/7001; repeatable', collect, [])
    .option('--peer <multiaddr>', "another validator's address, ending in /p2p/<its node id>; repeatable", collect, [])
    .option('--virtual-root <file>', 'the virtual vendor root key file (virtual platform)', 'virtual-root.json')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .option('--out <file>', 'where to write it', 'config.json')
    .action(async (opts: NodeConfigOptions) => {
      const file = resolve(opts.out);
      const config = await nodeConfigFrom(opts);
      writeNodeConfig(file, config);
      try {
        readNodeConfig(file); // what node start will read: refuse to leave a file it would refuse
      } catch (err) {
        throw new CliError(err instanceof ConfigError ? err.message : String(err));
      }
      process.stdout.write(JSON.stringify({ config: file, nodeId: config.nodeId }) + '\n');
    });
  node
    .command('start')
    .description('start one node from its config.json (data directory, genesis, RPC, enclave platform)')
    .requiredOption('--config <file>', "the node's config.json")
    .option('--no-explorer', 'do not serve the explorer page on GET / of the RPC port (whatever the config says)')
    .action(async (opts: { config: string; explorer: boolean }) => {
      let config;
      try {
        config = readNodeConfig(opts.config);
        if (!opts.explorer) config = { ...config, rpc: { ...config.rpc, explorer: false } };
      } catch (err) {
        if (err instanceof ConfigError) throw new CliError(err.message);
        throw err;
      }
      let genesis;
      try {
        genesis = readGenesisFile(config.genesisFile);
      } catch (err) {
        throw new CliError(`genesis ${config.genesisFile}: ${(err as Error).message}`);
      }
      if (!genesis.validators.some((v) => v.nodeId === config.nodeId)) {
        // A node the members add by governance: it syncs from its peers, and votes from the height they added it at.
        if (!config.p2p || config.p2p.peers.length === 0) {
          throw new CliError(`node "${config.nodeId}" is not a validator in ${config.genesisFile}: to join by governance it needs a "p2p" section with the validators as peers, to sync from`);
        }
        process.stderr.write(`note: node ${config.nodeId} is not a genesis validator: it syncs from its peers, and takes part once the members add it (\`cloister gov propose --add-node\`)\n`);
      }
      if (genesis.validators.length > 1 && !config.p2p) {
        throw new CliError(`the genesis has ${genesis.validators.length} validators: the config needs a "p2p" section (listen addresses and peers)`);
      }
      await runNode(config, createLogger(config.log), 'Cloister node');
    });
}

interface NodeConfigOptions {
  data: string;
  genesis: string;
  rpcPort: number;
  rpcHost: string;
  p2pListen: string[];
  peer: string[];
  virtualRoot: string;
  logLevel: string;
  out: string;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new CliError(`--rpc-port must be a TCP port (0-65535), got "${value}"`);
  return port;
}

/** The config a node needs, checked against its data directory and the genesis before anything is written. */
async function nodeConfigFrom(opts: NodeConfigOptions): Promise<NodeConfig> {
  const dataDir = resolve(opts.data);
  const keyFile = nodePaths(dataDir).nodeKey;
  if (!existsSync(keyFile)) throw new CliError(`${dataDir} has no node key: run \`cloister node init --data ${opts.data}\` first`);
  const { loadOrCreateNodeKey, peerIdOf } = await import('../network/index.js');
  const nodeId = peerIdOf(await loadOrCreateNodeKey(keyFile));
  let genesis;
  try {
    genesis = readGenesisFile(opts.genesis);
  } catch (err) {
    throw new CliError(`genesis ${opts.genesis}: ${(err as Error).message}`);
  }
  if (!['debug', 'info', 'warn', 'error'].includes(opts.logLevel)) throw new CliError('--log-level must be debug, info, warn or error');
  for (const addr of opts.p2pListen) if (!addr.startsWith('/')) throw new CliError(`--p2p-listen ${addr}: not a multiaddr`);
  for (const addr of opts.peer) {
    const id = /\/p2p\/([^/]+)$/.exec(addr)?.[1];
    if (!addr.startsWith('/') || !id) throw new CliError(`--peer ${addr}: a peer's multiaddr ends in /p2p/<its node id>`);
    if (id === nodeId) throw new CliError(`--peer ${addr} is this node itself`);
  }
  if (opts.peer.length > 0 && opts.p2pListen.length === 0) throw new CliError('--peer needs --p2p-listen (the address this node listens on)');
  if (genesis.validators.length > 1 && opts.p2pListen.length === 0) {
    throw new CliError(`the genesis has ${genesis.validators.length} validators: give --p2p-listen (and --peer for the others)`);
  }
  if (!genesis.validators.some((v) => v.nodeId === nodeId)) {
    process.stderr.write(`note: node ${nodeId} is not a validator in ${opts.genesis}: it syncs from its peers and takes part once the members add it (\`cloister gov propose --add-node\`)\n`);
  }
  return {
    dataDir,
    nodeId,
    genesisFile: resolve(opts.genesis),
    rpc: { host: opts.rpcHost, port: opts.rpcPort, corsOrigins: [] },
    ...(opts.p2pListen.length > 0 ? { p2p: { listen: opts.p2pListen, peers: opts.peer } } : {}),
    enclave: { platform: 'virtual', virtualRootFile: resolve(opts.virtualRoot) },
    log: { level: opts.logLevel as NodeConfig['log']['level'], format: 'json' },
  };
}
