import { join } from 'node:path';
import type { LogLevel } from '../log/logger.js';
import type { RpcLimits } from '../rpc/index.js';

/** Everything one node needs to run; `cloister dev`/`devnet` build it, `cloister node start` reads it. */
export interface NodeConfig {
  /** Where the node keeps its database, its network key and its sealed enclave identity. */
  dataDir: string;
  /** This node's identity in the genesis validator list: the peer id of its network key. */
  nodeId: string;
  /** Path of the genesis document. */
  genesisFile: string;
  /** Also any of the server's limits (RpcLimits, e.g. maxConnectionsPerClient); an absent one keeps its default. */
  rpc: {
    host: string;
    /** 0 picks a free port. */
    port: number;
    /** Origins allowed to call from a browser; empty means no CORS headers at all. */
    corsOrigins: string[];
    /** The explorer page on GET / (default true); `--no-explorer` turns it off. */
    explorer?: boolean;
    /** Prometheus metrics on GET /metrics (default true). */
    metrics?: boolean;
  } & Partial<RpcLimits>;
  /** libp2p; absent for a single-validator chain that talks to no one. */
  p2p?: {
    /** Multiaddrs to listen on, e.g. /ip4/0.0.0.0/tcp/7001. */
    listen: string[];
    /** Multiaddrs of the other nodes, each ending in /p2p/<node id>. */
    peers: string[];
  };
  enclave: {
    platform: 'virtual';
    /** The virtual vendor root key file (virtual platform only). */
    virtualRootFile: string;
  };
  log: { level: LogLevel; format: 'pretty' | 'json' };
}

/** Where a node keeps each of its files inside its data directory. */
export function nodePaths(dataDir: string): {
  db: string;
  nodeKey: string;
  sealedIdentity: string;
  /** The identity a new enclave program makes for a handover (`cloister node successor`), used once the old one no longer opens. */
  successorIdentity: string;
  virtualPlatformSecret: string;
} {
  return {
    db: join(dataDir, 'db'),
    nodeKey: join(dataDir, 'node-key'),
    sealedIdentity: join(dataDir, 'enclave', 'sealed-identity.json'),
    successorIdentity: join(dataDir, 'enclave', 'successor', 'sealed-identity.json'),
    virtualPlatformSecret: join(dataDir, 'enclave', 'virtual-platform-secret'),
  };
}
