import { ChainError, type ChainErrorCode } from '../../../consensus/index.js';

/** The codes a governance transaction is refused with: the GOV_ ChainErrorCodes (each mapped to its JSON-RPC code at the edge). */
export type GovernanceErrorCode = Extract<ChainErrorCode, `GOV_${string}`>;

export function govError(code: GovernanceErrorCode, message: string): ChainError {
  return new ChainError(code, message);
}
