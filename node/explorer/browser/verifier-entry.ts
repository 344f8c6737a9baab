// The receipt verifier of node/proofs, unchanged, as a browser module for the explorer page.
export { ProofError, verifyReceiptProof } from '../../proofs/index.js';
export { genesisHash } from '../../../consensus/index.js';
