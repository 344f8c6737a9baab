export * from './protocol.js';
export { Enclave, ANONYMOUS_CALLER, type EnclavePlatform, type SignResult } from './enclave.js';
export { SealedIdentity, SIGN_STEP, type LastSign, type SignStep } from './sealed-identity.js';
export { BlockExecutor, nextStateRoot, readNonce, type Deployment, type ExcludedTx, type ExecutionOutput } from './executor.js';
export { CommittedState, StateOverlay, stateKey, type StateWrite } from './state.js';
