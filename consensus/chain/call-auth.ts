import { ChainError } from '../errors.js';
import type { JsonValue } from '../encoding/canonical-json.js';
import { isHexOfLength } from '../encoding/hex.js';
import { signingMessage } from '../crypto/signing.js';
import { verifyEd25519, type Ed25519Signer } from '../crypto/ed25519.js';

/**
 * A read-only call that runs as a caller other than the anonymous one carries
 * that caller's signature over exactly this call, on this chain, until a time:
 *
 *   signingMessage('call', {chainId, caller, contract, method, args, expiresAt})
 *   = "cloister/call/v1\n" + canonical JSON of those fields
 *
 * so nobody can read "as" someone else (a contract may answer a caller with
 * what it holds for that caller), and a signed call cannot be replayed for
 * another call, another chain, or after it expires. The enclave checks it:
 * the host cannot make a call run as anyone but the anonymous caller.
 */
export interface CallAuth {
  /** The caller's ed25519 public key, lowercase hex. */
  caller: string;
  /** Milliseconds since the epoch after which the signature is no longer accepted. */
  expiresAt: number;
  /** ed25519 signature over callAuthMessage(...). */
  signature: string;
}

export interface CallTarget {
  contract: string;
  method: string;
  args: JsonValue[];
}

/** The longest a signed call stays valid after the time it is checked at (so signatures are short-lived). */
export const MAX_CALL_AUTH_TTL_MS = 5 * 60_000;

export function callAuthMessage(chainId: string, call: CallTarget, caller: string, expiresAt: number): Uint8Array {
  return signingMessage('call', { chainId, caller, contract: call.contract, method: call.method, args: call.args, expiresAt });
}

/** Signs a call as `signer`, valid for `ttlMs` from `now` (the client's clock). */
export function signCall(chainId: string, call: CallTarget, signer: Ed25519Signer, now: number, ttlMs = 60_000): CallAuth {
  const expiresAt = now + Math.min(ttlMs, MAX_CALL_AUTH_TTL_MS);
  return { caller: signer.publicKey, expiresAt, signature: signer.sign(callAuthMessage(chainId, call, signer.publicKey, expiresAt)) };
}

/**
 * Checks a call's authorisation at time `now` (the enclave uses its last
 * committed block's time); throws ChainError CALL_UNAUTHORIZED naming what is wrong.
 * Returns the caller the contract sees.
 */
export function checkCallAuth(chainId: string, call: CallTarget, auth: unknown, now: number): string {
  const fail = (why: string): never => {
    throw new ChainError('CALL_UNAUTHORIZED', `the call's signature is not accepted: ${why}`);
  };
  const a = auth as Partial<CallAuth> | null;
  if (typeof a !== 'object' || a === null) return fail('auth must be {caller, expiresAt, signature}');
  if (!isHexOfLength(a.caller, 32)) fail('caller must be a 32-byte public key in lowercase hex');
  if (typeof a.expiresAt !== 'number' || !Number.isSafeInteger(a.expiresAt)) fail('expiresAt must be an integer (ms since the epoch)');
  if (!isHexOfLength(a.signature, 64)) fail('signature must be 64 bytes of lowercase hex');
  if (a.expiresAt! < now) fail(`it expired at ${a.expiresAt}, before ${now}`);
  if (a.expiresAt! > now + MAX_CALL_AUTH_TTL_MS) fail(`it expires more than ${MAX_CALL_AUTH_TTL_MS / 1000} s after ${now}`);
  if (!verifyEd25519(a.caller!, callAuthMessage(chainId, call, a.caller!, a.expiresAt!), a.signature!)) fail('it does not verify for this call, chain and caller');
  return a.caller!;
}
