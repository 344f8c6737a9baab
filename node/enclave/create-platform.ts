import type { NodeConfig } from '../config/node-config.js';
import { nodePaths } from '../config/node-config.js';
import { measureEnclaveProgram } from './measurement.js';
import type { TeePlatform } from './platform.js';
import { VirtualPlatform, loadOrCreatePlatformSecret, loadOrCreateVirtualRoot } from './virtual-platform.js';

/** The TEE platform a node's config names, with what it needs from the data directory. */
export function createPlatform(config: Pick<NodeConfig, 'dataDir' | 'enclave'>): { platform: TeePlatform; virtualRootPem?: string } {
  const root = loadOrCreateVirtualRoot(config.enclave.virtualRootFile);
  const secret = loadOrCreatePlatformSecret(nodePaths(config.dataDir).virtualPlatformSecret);
  return { platform: new VirtualPlatform(root, measureEnclaveProgram().measurement, secret), virtualRootPem: root.publicKeyPem };
}
