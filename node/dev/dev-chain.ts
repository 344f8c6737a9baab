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
import { bundleMeasurement, loadBundleFromDir } from '../../contracts/index.js';
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
    // The bundles are compared with what the chain runs once the node is up (governance may have upgraded them since the genesis).
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
  const contracts = await withExtraContracts(await exampleContracts(member.publicKey), options.extraContracts ?? []);
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
 * `--contract DIR` on a chain that exists: each bundle must be the one the
 * chain runs now (deployed at genesis or by governance since). Otherwise the
 * node would run the old code without a word (an edited contract silently
 * ignored), so it says which, and the command that deploys or upgrades it.
 */
export async function checkContractsDeployed(
  running: readonly { name: string; measurement: string }[],
  dirs: readonly string[],
  where: { dataDir: string; rpcUrl: string },
): Promise<void> {
  const member = join(where.dataDir, 'member.json');
  for (const dir of dirs) {
    const bundle = await loadBundleFromDir(dir);
    const name = bundle.manifest.name;
    const deployed = running.find((c) => c.name === name);
    if (!deployed) {
      throw new DevChainError(
        `contract "${name}" (${dir}) is not deployed on the chain in ${where.dataDir}: deploy it with ` +
          `\`cloister contract deploy --rpc ${where.rpcUrl} --key ${member} ${dir}\` while the chain runs (or start a new chain with --fresh)`,
      );
    }
    const given = bundleMeasurement(bundle);
    if (deployed.measurement !== given) {
      throw new DevChainError(
        `contract "${name}" in ${dir} (measurement ${given.slice(0, 16)}…) differs from the one the chain in ${where.dataDir} runs (${deployed.measurement.slice(0, 16)}…), ` +
          `which is what would run: upgrade it, keeping its state, with \`cloister contract upgrade --rpc ${where.rpcUrl} --key ${member} ${name} ${dir}\` while the chain runs (or start a new chain with --fresh)`,
      );
    }
  }
}

/** The genesis contracts with the bundles in `dirs` added (deployed at genesis, without init arguments). */
export async function withExtraContracts(contracts: GenesisContract[], dirs: readonly string[]): Promise<GenesisContract[]> {
  const out = [...contracts];
  for (const dir of dirs) {
    const bundle = await loadBundleFromDir(dir);
    if (out.some((c) => c.name === bundle.manifest.name)) throw new DevChainError(`a contract named "${bundle.manifest.name}" is already deployed`);
    out.push({ name: bundle.manifest.name, manifest: bundle.manifest as unknown as JsonValue, code: bundle.code, initArgs: [] });
  }
  return out;
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
