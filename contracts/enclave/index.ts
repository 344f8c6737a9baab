export * from './protocol.js';
export { Enclave, ANONYMOUS_CALLER, type EnclavePlatform } from './enclave.js';
export { BlockExecutor, nextStateRoot, readNonce, type Deployment, type ExcludedTx, type ExecutionOutput } from './executor.js';
export { CommittedState, StateOverlay, stateKey, type StateWrite } from './state.js';
