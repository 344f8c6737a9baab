import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { ChainError } from '../errors.js';
import { canonicalBytes, canonicalize, isCanonicalJsonValue, type JsonValue } from '../encoding/canonical-json.js';
import { fromHex, toHex } from '../encoding/hex.js';
import {
  deriveHpkeKeyPair,
  setupHpkeRecipient,
  setupHpkeSender,
  type HpkeKeyPair,
  type HpkeRecipientContext,
  type HpkeSenderContext,
} from '../crypto/hpke.js';
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
 *             the message number `seq` of its HPKE context travels with it (absent
 *             for 0), so one context (a SealingSession) can carry many requests
 *             and the validators open them in any order, paying the X25519
 *             agreement once per session (OpeningSessions) instead of per request;
 *   response: AES-256-GCM under the 32 bytes exported from the same HPKE context
 *             with exporter context "cloister/tx-result/v1" (or ".../call-result/v1")
 *             followed by I2OSP(seq, 8): a key of its own for every request.
 *             A transaction's answer uses a zero nonce: its key seals exactly one
 *             answer (the chain executes a sender's nonce once) and every validator
 *             must produce the same bytes for the receipts root. A call's answer
 *             uses a random nonce carried first: a call can be sent again (by
 *             anyone who saw it) and answered differently under the same key.
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
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Sessions a client keeps sealing in before it starts a new one (far below AES-GCM's per-key limits). */
const MAX_SESSION_MESSAGES = 1 << 24;

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

/** What a confidential call's plaintext may carry besides the method and arguments: the caller's signature over the call. */
export interface SealedCallRequestPlain extends SealedCallPlain {
  auth?: JsonValue;
}

function resultKeyOf(context: HpkeContextLike, label: Uint8Array, seq: number): Uint8Array {
  const info = new Uint8Array(label.length + 8);
  info.set(label);
  new DataView(info.buffer).setBigUint64(label.length, BigInt(seq));
  return context.export(info, 32);
}

interface HpkeContextLike {
  export(exporterContext: Uint8Array, length: number): Uint8Array;
}

/**
 * A client's sealing session: one HPKE context to a network key that seals
 * many requests, each under the next sequence number (RFC 9180 section 5.2).
 * Seal one sender's transactions in one session (its enc links them, as their
 * common sender already does); a session never seals two messages under one
 * number, so a request sealed again gets a new number. Past 2^24 messages the
 * session starts a fresh context by itself.
 */
export class SealingSession {
  #tx: HpkeSenderContext | undefined;
  #call: HpkeSenderContext | undefined;
  constructor(readonly networkKey: Uint8Array) {}

  /** Seals a transaction's method and arguments (client side). */
  sealTx(binding: SealedTxBinding, call: SealedCallPlain): SealedRequest {
    if (!this.#tx || this.#tx.seq >= MAX_SESSION_MESSAGES) this.#tx = setupHpkeSender(this.networkKey, CONFIDENTIAL_TX_INFO);
    return sealWith(this.#tx, binding.generation, txAad(binding), canonicalBytes({ method: call.method, args: call.args }), TX_RESULT_LABEL);
  }

  /** Seals a read-only call (client side). */
  sealCall(binding: { chainId: string; contract: string; generation: number }, call: SealedCallRequestPlain): SealedRequest {
    if (!this.#call || this.#call.seq >= MAX_SESSION_MESSAGES) this.#call = setupHpkeSender(this.networkKey, CONFIDENTIAL_CALL_INFO);
    const plain: Record<string, JsonValue> = { method: call.method, args: call.args };
    if (call.auth !== undefined) plain['auth'] = call.auth;
    return sealWith(this.#call, binding.generation, callAad(binding), canonicalBytes(plain), CALL_RESULT_LABEL);
  }
}

function sealWith(context: HpkeSenderContext, generation: number, aad: Uint8Array, plain: Uint8Array, resultLabel: Uint8Array): SealedRequest {
  const seq = context.seq;
  const ct = context.seal(aad, plain);
  return {
    sealed: { generation, enc: toHex(context.enc), ...(seq > 0 ? { seq } : {}), ct: Buffer.from(ct).toString('base64') },
    resultKey: resultKeyOf(context, resultLabel, seq),
  };
}

/** Seals a transaction's method and arguments to the network key in a session of its own (client side). */
export function sealTxPayload(networkKey: Uint8Array, binding: SealedTxBinding, call: SealedCallPlain): SealedRequest {
  return new SealingSession(networkKey).sealTx(binding, call);
}

/** Seals a read-only call in a session of its own (client side). */
export function sealCallPayload(
  networkKey: Uint8Array,
  binding: { chainId: string; contract: string; generation: number },
  call: SealedCallRequestPlain,
): SealedRequest {
  return new SealingSession(networkKey).sealCall(binding, call);
}

const MAX_OPENING_SESSIONS = 16_384;

/**
 * The recipient side of sealing sessions (inside the enclave): contexts by
 * network key, info and enc, so that a session's later requests are opened
 * without the X25519 agreement and key schedule. A context depends only on
 * those three, so a remembered one opens exactly what a fresh one would.
 * Bounded, oldest forgotten first: requests each in a session of its own
 * (one-shot clients, or an attacker's) cost what they always did.
 */
export class OpeningSessions {
  readonly #contexts = new Map<string, HpkeRecipientContext>();
  constructor(private readonly max = MAX_OPENING_SESSIONS) {}

  context(network: HpkeKeyPair, info: Uint8Array, sealed: SealedPayload): HpkeRecipientContext {
    const id = `${info === CONFIDENTIAL_TX_INFO ? 't' : info === CONFIDENTIAL_CALL_INFO ? 'c' : toHex(info)}:${toHex(network.publicKey)}:${sealed.enc}`;
    let context = this.#contexts.get(id);
    if (!context) {
      context = setupHpkeRecipient(encOf(sealed), network, info);
      this.#contexts.set(id, context);
      if (this.#contexts.size > this.max) this.#contexts.delete(this.#contexts.keys().next().value!);
    }
    return context;
  }

  get size(): number {
    return this.#contexts.size;
  }
}

function recipientOf(network: HpkeKeyPair, info: Uint8Array, sealed: SealedPayload, sessions: OpeningSessions | undefined): HpkeRecipientContext {
  return sessions ? sessions.context(network, info, sealed) : setupHpkeRecipient(encOf(sealed), network, info);
}

/** Opens a sealed transaction inside the enclave; DECRYPT_FAILED when it was not sealed for exactly this transaction. */
export function openTxPayload(
  network: HpkeKeyPair,
  binding: Omit<SealedTxBinding, 'generation'>,
  sealed: SealedPayload,
  sessions?: OpeningSessions,
): SealedCallPlain & { resultKey: Uint8Array } {
  const recipient = recipientOf(network, CONFIDENTIAL_TX_INFO, sealed, sessions);
  const seq = sealed.seq ?? 0;
  const plain = recipient.openAt(seq, txAad({ ...binding, generation: sealed.generation }), Buffer.from(sealed.ct, 'base64'));
  const call = parsePlain(plain, false);
  return { method: call.method, args: call.args, resultKey: resultKeyOf(recipient, TX_RESULT_LABEL, seq) };
}

/** Opens a sealed call inside the enclave. */
export function openCallPayload(
  network: HpkeKeyPair,
  binding: { chainId: string; contract: string },
  sealed: SealedPayload,
  sessions?: OpeningSessions,
): SealedCallRequestPlain & { resultKey: Uint8Array } {
  const recipient = recipientOf(network, CONFIDENTIAL_CALL_INFO, sealed, sessions);
  const seq = sealed.seq ?? 0;
  const plain = recipient.openAt(seq, callAad({ ...binding, generation: sealed.generation }), Buffer.from(sealed.ct, 'base64'));
  return { ...parsePlain(plain, true), resultKey: resultKeyOf(recipient, CALL_RESULT_LABEL, seq) };
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
 * Seals a transaction's JSON answer under its request's result key.
 * Deterministic: the key is the request's own and seals exactly one answer
 * (the chain executes a sender's nonce once), so a fixed nonce is safe, and
 * every validator computes the same bytes.
 */
export function sealResult(resultKey: Uint8Array, answer: JsonValue): string {
  return aeadSeal(resultKey, ZERO_NONCE, canonicalBytes(answer)).toString('base64');
}

/** Opens a transaction's sealed answer with the request's result key (the sender's side); DECRYPT_FAILED when it does not open. */
export function openResult(resultKey: Uint8Array, sealed: string): JsonValue {
  return aeadOpenJson(resultKey, ZERO_NONCE, Buffer.from(sealed, 'base64'));
}

/**
 * Seals a call's JSON answer under its request's result key, with a random
 * nonce sent first: the same sealed call can arrive again (sent twice, or
 * replayed by whoever saw it) and be answered differently, and one key must
 * never seal two plaintexts under one nonce.
 */
export function sealCallResult(resultKey: Uint8Array, answer: JsonValue): string {
  const nonce = randomBytes(NONCE_BYTES);
  return Buffer.concat([nonce, aeadSeal(resultKey, nonce, canonicalBytes(answer))]).toString('base64');
}

/** Opens a call's sealed answer (the caller's side); DECRYPT_FAILED when it does not open. */
export function openCallResult(resultKey: Uint8Array, sealed: string): JsonValue {
  const bytes = Buffer.from(sealed, 'base64');
  if (bytes.length < NONCE_BYTES) throw new ChainError('DECRYPT_FAILED', 'the sealed answer is shorter than its nonce');
  return aeadOpenJson(resultKey, bytes.subarray(0, NONCE_BYTES), bytes.subarray(NONCE_BYTES));
}

function aeadSeal(key: Uint8Array, nonce: Uint8Array, plain: Uint8Array): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
}

function aeadOpenJson(key: Uint8Array, nonce: Uint8Array, bytes: Uint8Array): JsonValue {
  if (bytes.length < TAG_BYTES) throw new ChainError('DECRYPT_FAILED', 'the sealed answer is shorter than its tag');
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
  try {
    const plain = Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - TAG_BYTES)), decipher.final()]);
    return JSON.parse(plain.toString('utf8')) as JsonValue;
  } catch {
    throw new ChainError('DECRYPT_FAILED', 'the sealed answer does not open with this key');
  }
}
