export * from './protocol.js';
export { Enclave, ANONYMOUS_CALLER, CALL_GAS_LIMIT, type EnclavePlatform, type SignResult } from './enclave.js';
export { SealedIdentity } from './sealed-identity.js';
export { parseEcall, MAX_ECALL_TXS } from './ecall-parse.js';
export { BlockExecutor, readNonce, type Deployment, type ExcludedTx, type ExecutionOutput } from './executor.js';
export { CommittedState, StateOverlay, stateKey, type StateWrite } from './state.js';
export { genesisChainView, type ChainView } from './chain-view.js';
