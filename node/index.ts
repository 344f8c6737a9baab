import './polyfills.js';

export { CloisterNode, type CloisterNodeOptions } from './node.js';
export type { NodeConfig } from './config/node-config.js';
export * from './chain/api.js';
export { CloisterClient, RpcError } from './client/index.js';
export { readKeyFile, writeKeyFile, type KeyFile } from './keys/key-file.js';
export { createLogger, type Logger } from './log/logger.js';
export * from './proofs/index.js';
