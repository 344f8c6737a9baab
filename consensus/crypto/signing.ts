import { canonicalize } from '../encoding/canonical-json.js';

/**
 * What gets signed: a domain tag, a newline, then the canonical encoding of the
 * payload. The tag keeps a signature made for one kind of object (a transaction)
 * from being valid for another (a vote, a block header).
 */
export type SigningDomain = 'tx' | 'vote' | 'proposal' | 'header' | 'enclave-keys' | 'call';

export function signingMessage(domain: SigningDomain, payload: unknown): Uint8Array {
  return Buffer.from(`cloister/${domain}/v1\n${canonicalize(payload)}`, 'utf8');
}
