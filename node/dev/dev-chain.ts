import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEFAULT_CONSENSUS_PARAMS,
  generateEd25519KeyPair,
  parseGenesis,
  type Genesis,
  type GenesisContract,
  type JsonValue,
} from '../../consensus/index.js';
import { bundleMeasurement, loadBundleFromDir, parseManifest } from '../../contracts/index.js';
import { provisionNode } from '../enclave/provision.js';
import type { Logger } from '../log/logger.js';
import { readNodeConfig, writeNodeConfig } from '../config/read-config.js';
import { loadOrCreateVirtualRoot } from '../enclave/virtual-platform.js';
import { readKeyFile, writeKeyFile } from '../keys/key-file.js';
import type { NodeConfig } from '../config/node-config.js';
import { projectRoot } from '../util/project-root.js';

export const DEV_CHAIN_ID = 'cloister-dev';
export const EXAMPLE_CONTRACTS = ['counter', 'token', 'analytics'] as const;

export interface DevChainOptions {
  dataDir: string;
  rpcPort: number;
  rpcHost?: string;
  fresh?: boolean;
  /** Genesis time; the caller passes the clock's reading. */
  now: number;
  /** Extra contract bundle directories to approve and deploy at genesis (a new chain only). */
  extraContracts?: string[];
  log: Logger;
}

/**
 * Prepares the single-node development chain in a data directory: the virtual
 * vendor root, a development member key (the token contract's owner) and a
 * genesis that approves and deploys the example contracts. An existing
 * directory is resumed as it is; `fresh` wipes it first.
 */
export async function prepareDevChain(options: DevChainOptions): Promise<{ config: NodeConfig; created: boolean }> {
  const { dataDir } = options;
  if (options.fresh) rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const genesisFile = join(dataDir, 'genesis.json');
  const virtualRootFile = join(dataDir, 'virtual-root.json');
  const memberFile = join(dataDir, 'member.json');
  const configFile = join(dataDir, 'config.json');
  if (existsSync(genesisFile) && existsSync(configFile)) {
    await checkContractsDeployed(readGenesisFile(genesisFile), options.extraContracts ?? [], dataDir);
    const stored = readNodeConfig(configFile);
    return { config: { ...stored, rpc: { ...stored.rpc, host: options.rpcHost ?? '127.0.0.1', port: options.rpcPort } }, created: false };
  }
  const config: NodeConfig = {
    dataDir,
    nodeId: '',
    genesisFile,
    rpc: { host: options.rpcHost ?? '127.0.0.1', port: options.rpcPort, corsOrigins: [] },
    enclave: { platform: 'virtual', virtualRootFile },
    log: { level: 'info', format: 'pretty' },
  };
  if (existsSync(genesisFile)) {
    throw new Error(`${dataDir} holds a chain from an older version (no config.json); start again with --fresh`);
  }

  const root = loadOrCreateVirtualRoot(virtualRootFile);
  const node = await provisionNode(config, options.log);
  config.nodeId = node.nodeId;
  if (!existsSync(memberFile)) writeKeyFile(memberFile, generateEd25519KeyPair());
  const member = readKeyFile(memberFile);
  const contracts = await exampleContracts(member.publicKey);
  for (const dir of options.extraContracts ?? []) {
    const bundle = await loadBundleFromDir(dir);
    if (contracts.some((c) => c.name === bundle.manifest.name)) {
      throw new Error(`a contract named "${bundle.manifest.name}" is already deployed`);
    }
    contracts.push({ name: bundle.manifest.name, manifest: bundle.manifest as unknown as JsonValue, code: bundle.code, initArgs: [] });
  }
  const { measurement } = node;
  const genesis: Genesis = {
    chainId: DEV_CHAIN_ID,
    time: options.now,
    members: [{ id: 'dev', publicKey: member.publicKey }],
    validators: [{ nodeId: node.nodeId, voteKey: node.voteKey }],
    contracts,
    enclave: { measurements: { virtual: [measurement] }, virtualRoots: [root.publicKeyPem] },
    // The attestation policy (attestation/policy.ts): only the virtual platform, only this enclave program.
    policy: { allowedPlatforms: ['virtual'], allowVirtual: true, allowDebug: false, measurements: { virtual: [measurement] } },
    consensus: { ...DEFAULT_CONSENSUS_PARAMS },
  };
  writeFileSync(genesisFile, JSON.stringify(parseGenesis(genesis), null, 2) + '\n');
  writeNodeConfig(configFile, config);
  return { config, created: true };
}

/**
 * `--contract DIR` on a chain that exists: each bundle must be the one the chain
 * deployed. Otherwise the node would run the old code without a word (an edited
 * contract silently ignored), so it says which and what to do instead.
 */
async function checkContractsDeployed(genesis: Genesis, dirs: string[], dataDir: string): Promise<void> {
  for (const dir of dirs) {
    const bundle = await loadBundleFromDir(dir);
    const name = bundle.manifest.name;
    const deployed = genesis.contracts.find((c) => c.name === name);
    if (!deployed) {
      throw new DevChainError(
        `contract "${name}" (${dir}) is not deployed on the chain in ${dataDir}, which was made without it: start a new chain with --fresh to deploy it`,
      );
    }
    const running = bundleMeasurement({ manifest: parseManifest(deployed.manifest), code: deployed.code });
    const given = bundleMeasurement(bundle);
    if (running !== given) {
      throw new DevChainError(
        `contract "${name}" in ${dir} (measurement ${given.slice(0, 16)}…) differs from the one the chain in ${dataDir} deployed (${running.slice(0, 16)}…), ` +
          'which is what would run: start a new chain with --fresh to deploy the new code (upgrading a deployed contract in place comes with governance)',
      );
    }
  }
}

/** A development chain cannot be prepared as asked; the message says what to do. */
export class DevChainError extends Error {
  override readonly name = 'DevChainError';
  readonly code = 'DEV_CHAIN_INVALID';
}

/** The example contracts every development chain deploys; the member owns `token`. */
export async function exampleContracts(memberPublicKey: string): Promise<GenesisContract[]> {
  const contracts: GenesisContract[] = [];
  for (const name of EXAMPLE_CONTRACTS) {
    const bundle = await loadBundleFromDir(join(projectRoot(), 'contracts', 'examples', name));
    contracts.push({
      name,
      manifest: bundle.manifest as unknown as JsonValue,
      code: bundle.code,
      initArgs: name === 'token' ? [memberPublicKey] : [],
    });
  }
  return contracts;
}

export function readGenesisFile(file: string): Genesis {
  return parseGenesis(JSON.parse(readFileSync(file, 'utf8')));
}
