/**
 * Errors of the chain core. Callers branch on `code`, never on the message;
 * the RPC edge maps codes to JSON-RPC error numbers.
 */
export type ChainErrorCode =
  | 'ENCODING_INVALID'
  | 'INVALID_ARGS'
  | 'TX_MALFORMED'
  | 'TX_TOO_LARGE'
  | 'TX_BAD_SIGNATURE'
  | 'TX_WRONG_CHAIN'
  | 'TX_NONCE_TOO_LOW'
  | 'TX_NONCE_GAP'
  | 'TX_DUPLICATE'
  | 'TX_GAS_LIMIT'
  | 'TX_REF_UNKNOWN'
  | 'TX_UNKNOWN_CONTRACT'
  | 'TX_UNKNOWN_METHOD'
  | 'TX_READONLY_METHOD'
  | 'MEMPOOL_FULL'
  | 'BLOCK_INVALID'
  | 'CERTIFICATE_INVALID'
  | 'VOTE_CONFLICT'
  | 'VOTE_UNJUSTIFIED'
  | 'DOUBLE_SIGN_RISK'
  | 'BLOCK_NOT_VALIDATED'
  | 'CALL_FAILED'
  | 'CALL_UNAUTHORIZED'
  | 'NOT_FOUND'
  | 'ENCLAVE_UNAVAILABLE'
  | 'ECALL_INVALID'
  | 'ENCLAVE_BUSY'
  | 'STATE_INVALID'
  | 'SEAL_INVALID'
  | 'HPKE_INVALID'
  | 'DECRYPT_FAILED'
  | 'TX_NOT_ENCRYPTED'
  | 'SECRET_UNAVAILABLE'
  | 'KEY_UNVERIFIED'
  | 'GOV_NOT_MEMBER'
  | 'GOV_ACTION_INVALID'
  | 'GOV_PROPOSAL_NOT_FOUND'
  | 'GOV_PROPOSAL_CLOSED'
  | 'GOV_ALREADY_VOTED'
  | 'GOV_NOT_PROPOSER'
  | 'GOV_HANDOVER_INVALID'
  | 'STATE_PROOF_UNAVAILABLE'
  | 'STATE_PROOF_CONFIDENTIAL';

export class ChainError extends Error {
  override readonly name = 'ChainError';
  constructor(
    readonly code: ChainErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export function isChainError(err: unknown): err is ChainError {
  return err instanceof ChainError;
}
