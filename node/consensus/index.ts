export {
  ConsensusService,
  type ConsensusChain,
  type ConsensusEnclave,
  type ConsensusMempool,
  type ConsensusNetwork,
  type ConsensusServiceOptions,
  type ConsensusStore,
} from './consensus-service.js';
export { BlockSync, type BlockSyncOptions } from './block-sync.js';
export { checkConsensusMessage, encodeConsensusMessage, type ConsensusMessage } from './wire.js';
export { checkCertifiedBlock, type CertifiedBlock } from './certified-block.js';
