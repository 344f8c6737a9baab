export * from './types.js';
export { LedgerError, LedgerVerifier, type LedgerSummary } from './verifier.js';
export { LedgerSourceError, fileSource, rpcSource, storeSource } from './sources.js';
export { LedgerReexecutor } from './reexecute.js';
