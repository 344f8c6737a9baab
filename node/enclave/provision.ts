import type { NodeConfig } from '../config/node-config.js';
import { nodePaths } from '../config/node-config.js';
import type { Logger } from '../log/logger.js';
import { createPlatform } from './create-platform.js';
import { EnclaveHost } from './enclave-host.js';

/** What a member sends to the genesis builder for one of its nodes. */
export interface ProvisionedNode {
  /** The network identity (libp2p peer id). */
  nodeId: string;
  /** The enclave's vote key: made inside the enclave, kept sealed to its program. */
  voteKey: string;
  platform: string;
  measurement: string;
}

/**
 * Prepares a node's identities before there is a genesis: its network key
 * and its enclave's vote key (the enclave makes it and the node stores it only
 * sealed). Idempotent: an existing node key and sealed identity are kept.
 */
export async function provisionNode(config: Pick<NodeConfig, 'dataDir' | 'enclave'>, log: Logger): Promise<ProvisionedNode> {
  const paths = nodePaths(config.dataDir);
  // libp2p's key code, loaded when a node is provisioned: the CLI's commands that only read a genesis never need it.
  const { loadOrCreateNodeKey, peerIdOf } = await import('../network/index.js');
  const nodeId = peerIdOf(await loadOrCreateNodeKey(paths.nodeKey));
  const { platform } = createPlatform(config);
  const host = new EnclaveHost(platform, log, paths.sealedIdentity);
  host.start();
  try {
    const keys = await host.openIdentity();
    return { nodeId, voteKey: keys.publicKeys.vote!, platform: platform.name, measurement: platform.measurement };
  } finally {
    await host.stop();
  }
}
