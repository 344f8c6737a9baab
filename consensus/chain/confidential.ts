import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';
import { ChainError } from '../errors.js';
import { canonicalBytes, canonicalize, isCanonicalJsonValue, type JsonValue } from '../encoding/canonical-json.js';
import { fromHex, toHex } from '../encoding/hex.js';
import { deriveHpkeKeyPair, setupHpkeRecipient, setupHpkeSender, type HpkeKeyPair } from '../crypto/hpke.js';
import { METHOD_NAME_RE, type SealedPayload, type TxEnvelope } from './transaction.js';

/**
 * Confidential transactions and calls: what a client seals to the network
 * encryption key, what the enclave opens, and how results come back sealed to
 * the sender. Pure functions over bytes; the scheme is HPKE (RFC 9180) base
 * mode, X25519 / HKDF-SHA256 / AES-256-GCM (consensus/crypto/hpke.ts):
 *
 *   request:  HPKE to the generation's network key, info "cloister/confidential-tx/v1"
 *             (calls: ".../confidential-call/v1"), AAD the canonical JSON of the
 *             cleartext fields it belongs to (chain, contract, sender, nonce, generation),
 *             plaintext the canonical JSON {method, args} (calls add the optional auth);
 *   response: AES-256-GCM under the 32 bytes exported from the same HPKE context
 *             (label "cloister/tx-result/v1" or ".../call-result/v1"), with a zero
 *             nonce: the key is fresh per request and used once, and every validator
 *             must produce the same bytes for the receipts root.
 *
 * A ciphertext is bound by its AAD, so replaying it under another chain,
 * sender, nonce or contract fails to open; the sender's signature covers it.
 */

export const CONFIDENTIAL_TX_INFO = new TextEncoder().encode('cloister/confidential-tx/v1');
export const CONFIDENTIAL_CALL_INFO = new TextEncoder().encode('cloister/confidential-call/v1');
const TX_RESULT_LABEL = new TextEncoder().encode('cloister/tx-result/v1');
const CALL_RESULT_LABEL = new TextEncoder().encode('cloister/call-result/v1');
const NETWORK_KEY_INFO = 'cloister/network-key/v1';
const ZERO_NONCE = new Uint8Array(12);
const TAG_BYTES = 16;

/** The network encryption key pair of one consortium-secret generation (only enclaves hold the private half). */
export function networkKeyPair(secret: Uint8Array): HpkeKeyPair {
  return deriveHpkeKeyPair(hkdf(secret, NETWORK_KEY_INFO, 32));
}

/** HKDF-SHA256 with an empty salt: a purpose key from a consortium secret. */
export function hkdf(secret: Uint8Array, info: string, length: number): Uint8Array {
  if (secret.length !== 32) throw new ChainError('INVALID_ARGS', 'a consortium secret is 32 bytes');
  return new Uint8Array(hkdfSync('sha256', secret, new Uint8Array(0), info, length));
}

/** The cleartext fields a sealed transaction's ciphertext is bound to. */
export type SealedTxBinding = Pick<TxEnvelope, 'chainId' | 'from' | 'nonce' | 'contract'> & { generation: number };

function txAad(b: SealedTxBinding): Uint8Array {
  return domainBytes('tx-aad', { chainId: b.chainId, contract: b.contract, from: b.from, generation: b.generation, nonce: b.nonce });
}

function callAad(b: { chainId: string; contract: string; generation: number }): Uint8Array {
  return domainBytes('call-aad', { chainId: b.chainId, contract: b.contract, generation: b.generation });
}

function domainBytes(domain: string, payload: JsonValue): Uint8Array {
  return new TextEncoder().encode(`cloister/${domain}/v1\n${canonicalize(payload)}`);
}

export interface SealedCallPlain {
  method: string;
  args: JsonValue[];
}

/** A sealed request and the key that opens its sealed answer (the sender keeps it). */
export interface SealedRequest {
  sealed: SealedPayload;
  /** 32 bytes exported from the HPKE context: opens the receipt's or call's sealed result. */
  resultKey: Uint8Array;
}

/** Seals a transaction's method and arguments to the network key (client side). */
export function sealTxPayload(networkKey: Uint8Array, binding: SealedTxBinding, call: SealedCallPlain): SealedRequest {
  const sender = setupHpkeSender(networkKey, CONFIDENTIAL_TX_INFO);
  const ct = sender.seal(txAad(binding), canonicalBytes({ method: call.method, args: call.args }));
  return {
    sealed: { generation: binding.generation, enc: toHex(sender.enc), ct: Buffer.from(ct).toString('base64') },
    resultKey: sender.export(TX_RESULT_LABEL, 32),
  };
}

/** Opens a sealed transaction inside the enclave; DECRYPT_FAILED when it was not sealed for exactly this transaction. */
export function openTxPayload(
  network: HpkeKeyPair,
  binding: Omit<SealedTxBinding, 'generation'>,
  sealed: SealedPayload,
): SealedCallPlain & { resultKey: Uint8Array } {
  const recipient = setupHpkeRecipient(encOf(sealed), network, CONFIDENTIAL_TX_INFO);
  const plain = recipient.open(txAad({ ...binding, generation: sealed.generation }), Buffer.from(sealed.ct, 'base64'));
  const call = parsePlain(plain, false);
  return { method: call.method, args: call.args, resultKey: recipient.export(TX_RESULT_LABEL, 32) };
}

/** What a confidential call's plaintext may carry besides the method and arguments: the caller's signature over the call. */
export interface SealedCallRequestPlain extends SealedCallPlain {
  auth?: JsonValue;
}

/** Seals a read-only call (client side). */
export function sealCallPayload(
  networkKey: Uint8Array,
  binding: { chainId: string; contract: string; generation: number },
  call: SealedCallRequestPlain,
): SealedRequest {
  const sender = setupHpkeSender(networkKey, CONFIDENTIAL_CALL_INFO);
  const plain: Record<string, JsonValue> = { method: call.method, args: call.args };
  if (call.auth !== undefined) plain['auth'] = call.auth;
  const ct = sender.seal(callAad(binding), canonicalBytes(plain));
  return {
    sealed: { generation: binding.generation, enc: toHex(sender.enc), ct: Buffer.from(ct).toString('base64') },
    resultKey: sender.export(CALL_RESULT_LABEL, 32),
  };
}

/** Opens a sealed call inside the enclave. */
export function openCallPayload(
  network: HpkeKeyPair,
  binding: { chainId: string; contract: string },
  sealed: SealedPayload,
): SealedCallRequestPlain & { resultKey: Uint8Array } {
  const recipient = setupHpkeRecipient(encOf(sealed), network, CONFIDENTIAL_CALL_INFO);
  const plain = recipient.open(callAad({ ...binding, generation: sealed.generation }), Buffer.from(sealed.ct, 'base64'));
  return { ...parsePlain(plain, true), resultKey: recipient.export(CALL_RESULT_LABEL, 32) };
}

function encOf(sealed: SealedPayload): Uint8Array {
  const enc = fromHex(sealed.enc);
  if (!enc) throw new ChainError('HPKE_INVALID', 'sealed.enc is not hex');
  return enc;
}

function parsePlain(bytes: Uint8Array, allowAuth: boolean): SealedCallRequestPlain {
  const fail = (why: string): never => {
    throw new ChainError('DECRYPT_FAILED', `the sealed request opened but is malformed: ${why}`);
  };
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return fail('not UTF-8 JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('not an object');
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) if (key !== 'method' && key !== 'args' && !(allowAuth && key === 'auth')) fail(`unknown field "${key}"`);
  if (typeof v['method'] !== 'string' || !METHOD_NAME_RE.test(v['method'])) fail('method must match ' + METHOD_NAME_RE.source);
  if (!Array.isArray(v['args']) || !isCanonicalJsonValue(v['args'])) fail('args must be an array of JSON with integer numbers only');
  const out: SealedCallRequestPlain = { method: v['method'] as string, args: v['args'] as JsonValue[] };
  if (v['auth'] !== undefined) out.auth = v['auth'] as JsonValue;
  return out;
}

/**
 * Seals a JSON answer under a request's result key. Deterministic: the key is
 * fresh for every request and seals exactly one answer, so a fixed nonce is
 * safe, and every validator computes the same bytes.
 */
export function sealResult(resultKey: Uint8Array, answer: JsonValue): string {
  const cipher = createCipheriv('aes-256-gcm', resultKey, ZERO_NONCE);
  const body = Buffer.concat([cipher.update(canonicalBytes(answer)), cipher.final()]);
  return Buffer.concat([body, cipher.getAuthTag()]).toString('base64');
}

/** Opens a sealed answer with the request's result key (the sender's side); DECRYPT_FAILED when it does not open. */
export function openResult(resultKey: Uint8Array, sealed: string): JsonValue {
  const bytes = Buffer.from(sealed, 'base64');
  if (bytes.length < TAG_BYTES) throw new ChainError('DECRYPT_FAILED', 'the sealed result is shorter than its tag');
  const decipher = createDecipheriv('aes-256-gcm', resultKey, ZERO_NONCE);
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
  try {
    const plain = Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - TAG_BYTES)), decipher.final()]);
    return JSON.parse(plain.toString('utf8')) as JsonValue;
  } catch {
    throw new ChainError('DECRYPT_FAILED', 'the sealed result does not open with this key');
  }
}
