import { ChainError } from '../../../consensus/index.js';

/** The codes a governance transaction is refused with (each a ChainErrorCode, mapped to its JSON-RPC code at the edge). */
export type GovernanceErrorCode =
  | 'GOV_NOT_MEMBER'
  | 'GOV_ACTION_INVALID'
  | 'GOV_PROPOSAL_NOT_FOUND'
  | 'GOV_PROPOSAL_CLOSED'
  | 'GOV_ALREADY_VOTED'
  | 'GOV_NOT_PROPOSER'
  | 'GOV_HANDOVER_INVALID';

export function govError(code: GovernanceErrorCode, message: string): ChainError {
  return new ChainError(code, message);
}
