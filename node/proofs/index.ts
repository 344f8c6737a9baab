export * from './types.js';
export { ProofError, type ProofErrorCode } from './errors.js';
export { checkAgainstView, verifyCertifiedHeader, viewAfter, viewAtHeight, type VerifyOptions } from './verify-header.js';
export { verifyReceiptProof, type VerifiedReceipt } from './verify-receipt.js';
export { verifyStateValueProof, type VerifiedStateValue } from './verify-state.js';
export { NO_TX_LIMITS } from './shape.js';
