/**
 * Why a proof is refused. Callers branch on the code; the message says what
 * exactly failed (which signer, which path).
 *  PROOF_MALFORMED   not the shape of a proof of this kind
 *  WRONG_CHAIN       the header, a transition or the transaction is of another chain than the genesis
 *  VIEW_TRANSITION   a governance change of the validators or policy does not verify
 *  VALIDATOR_SET     the header commits to a validator set the proof does not lead to from the genesis
 *  POLICY            the header commits to an attestation policy the proof does not lead to
 *  CERTIFICATE       the commit certificate is not a quorum of that height's validators for this header
 *  ATTESTATION       a signer's evidence is missing, does not verify, or the policy of the height refuses it
 *  TX_INVALID        the transaction's shape or signature does not verify
 *  TX_PATH           the transaction is not in the block (its path does not lead to txRoot)
 *  RECEIPT_PATH      the receipt is not the block's receipt for it (its path does not lead to receiptsRoot)
 *  STATE_PATH        the value is not the key's value under the header's state root
 *  RESULT_MISMATCH   a decrypted result differs from what the receipt commits to
 */
export type ProofErrorCode =
  | 'PROOF_MALFORMED'
  | 'WRONG_CHAIN'
  | 'VIEW_TRANSITION'
  | 'VALIDATOR_SET'
  | 'POLICY'
  | 'CERTIFICATE'
  | 'ATTESTATION'
  | 'TX_INVALID'
  | 'TX_PATH'
  | 'RECEIPT_PATH'
  | 'STATE_PATH'
  | 'RESULT_MISMATCH';

export class ProofError extends Error {
  override readonly name = 'ProofError';
  constructor(
    readonly code: ProofErrorCode,
    message: string,
  ) {
    super(message);
  }
}
