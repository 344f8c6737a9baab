import { CONTRACT_NAME_RE, canonicalize, verifyStateProof, type Genesis, type JsonValue } from '../../consensus/index.js';
import { stateKey } from '../../contracts/index.js';
import { ProofError } from './errors.js';
import { isRecord } from './shape.js';
import { verifyCertifiedHeader, type VerifyOptions } from './verify-header.js';
import { STATE_PROOF_KIND, type VerifiedHeader } from './types.js';

export interface VerifiedStateValue extends VerifiedHeader {
  contract: string;
  key: string;
  /** The value, or null when the key is absent. */
  value: JsonValue | null;
}

/**
 * Verifies a state proof (chain_getStateProof, `cloister state verify`)
 * offline: the block as for a receipt (verifyCertifiedHeader), then that the
 * contract's key holds the value (or is absent) under its state root.
 */
export function verifyStateValueProof(raw: unknown, genesis: Genesis, options: VerifyOptions): VerifiedStateValue {
  if (!isRecord(raw) || raw.kind !== STATE_PROOF_KIND) throw new ProofError('PROOF_MALFORMED', `not a state proof (kind must be "${STATE_PROOF_KIND}")`);
  const { contract, key, value, proof } = raw;
  if (typeof contract !== 'string' || !CONTRACT_NAME_RE.test(contract) || typeof key !== 'string' || key.length === 0 || key.length > 1024) {
    throw new ProofError('PROOF_MALFORMED', 'contract and key must be a contract name and a key');
  }
  let text: string | null;
  try {
    text = value === null ? null : canonicalize(value as JsonValue);
  } catch (err) {
    throw new ProofError('PROOF_MALFORMED', `the value cannot be encoded canonically: ${(err as Error).message}`);
  }
  const block = verifyCertifiedHeader(raw.block, genesis, options);
  if (!verifyStateProof(block.header.stateRoot, stateKey.contract(contract, key), text, proof as never)) {
    throw new ProofError('STATE_PATH', `${contract}/${key} does not hold ${text === null ? 'nothing' : 'this value'} under the state root of block ${block.height}`);
  }
  const { header: _header, ...verified } = block;
  return { ...verified, contract, key, value: text === null ? null : (JSON.parse(text) as JsonValue) };
}
