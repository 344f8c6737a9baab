import type { LogLevel } from '../log/logger.js';

/** Everything one node needs to run; `cloister dev` builds it, `cloister node start` reads it. */
export interface NodeConfig {
  /** Where the node keeps its database and keys. */
  dataDir: string;
  /** This node's identity in the genesis validator list. */
  nodeId: string;
  /** Path of the genesis document. */
  genesisFile: string;
  rpc: {
    host: string;
    /** 0 picks a free port. */
    port: number;
    /** Origins allowed to call from a browser; empty means no CORS headers at all. */
    corsOrigins: string[];
  };
  enclave: {
    platform: 'virtual';
    /** The virtual vendor root key file (virtual platform only). */
    virtualRootFile: string;
  };
  log: { level: LogLevel; format: 'pretty' | 'json' };
}
