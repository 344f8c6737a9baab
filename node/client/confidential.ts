import { randomBytes } from 'node:crypto';
import {
  ChainError,
  openCallResult,
  openResult,
  SealingSession,
  type SealedRequest,
  signCall,
  signTx,
  type Ed25519Signer,
  type Genesis,
  type JsonValue,
  type PlainTxBody,
  type SignedTx,
} from '../../consensus/index.js';
import { evaluateAdmission } from '../../contracts/index.js';

export { SealingSession } from '../../consensus/index.js';
import type { EncryptionKeyView, ReceiptView } from '../chain/api.js';

/** A network encryption key that verified against a genesis: safe to seal to. */
export interface VerifiedEncryptionKey {
  generation: number;
  /** X25519 public key, 32 bytes. */
  publicKey: Uint8Array;
  /** The node whose enclave's evidence bound it. */
  nodeId: string;
  measurement: string;
}

/** What a client trusts a network key's evidence against. */
export interface EncryptionKeyTrust {
  genesis: Genesis;
  /** The client's challenge the evidence must bind. */
  nonce: string;
  now?: Date;
  /**
   * The validators and policy in force, when governance changed them since
   * the genesis (a node added, a handover in a rolling upgrade, a new
   * measurement allowed): a chain view the client trusts (from its own
   * member's node, or its auditor's replay of the ledger), never the word of
   * the node whose key is checked. The genesis still pins the chain and the roots.
   */
  view?: { validators: Genesis['validators']; policy: Genesis['policy'] };
}

/**
 * Checks a tee_getEncryptionKey answer against the consortium's genesis, the
 * client's trust anchor: the evidence must verify to a root the genesis pins
 * (a declared virtual root, or AMD's / Intel's), satisfy the genesis policy
 * (measurement, TCB, debug off, age), come from a validator's enclave (its
 * vote key is the genesis's), and bind, in its report_data, that enclave's
 * keys plus `network` = the key offered, this chain and the client's nonce.
 * Anything else is KEY_UNVERIFIED and nothing is to be sealed to the key:
 * a swapped key (a man in the middle) fails here.
 */
export function verifyEncryptionKey(view: EncryptionKeyView, trust: EncryptionKeyTrust): VerifiedEncryptionKey {
  const refuse = (why: string): never => {
    throw new ChainError('KEY_UNVERIFIED', `the network encryption key is not accepted: ${why}`);
  };
  const ev = view?.evidence;
  if (typeof view !== 'object' || view === null || typeof ev !== 'object' || ev === null) return refuse('the answer is not {generation, publicKey, evidence}');
  if (!Number.isSafeInteger(view.generation) || view.generation < 1) refuse('generation must be a positive integer');
  if (typeof view.publicKey !== 'string' || !/^[0-9a-f]{64}$/.test(view.publicKey)) refuse('publicKey must be 32 bytes of lowercase hex');
  if (ev.chainId !== trust.genesis.chainId) refuse(`the evidence is for chain "${String(ev.chainId)}", the genesis is "${trust.genesis.chainId}"`);
  if (ev.freshness !== trust.nonce) refuse('the evidence does not answer our challenge');
  if (ev.publicKeys?.['network'] !== view.publicKey) refuse('the evidence does not bind this key');
  const decision = evaluateAdmission(
    { nodeId: ev.nodeId, publicKeys: ev.publicKeys, evidence: ev.evidence },
    {
      genesis: trust.view ? { ...trust.genesis, validators: trust.view.validators, policy: trust.view.policy } : trust.genesis,
      authenticatedNodeId: ev.nodeId,
      freshness: trust.nonce,
      now: trust.now ?? new Date(),
    },
  );
  if (!decision.admitted) refuse(`${decision.reason!.code}: ${decision.reason!.message}`);
  return { generation: view.generation, publicKey: new Uint8Array(Buffer.from(view.publicKey, 'hex')), nodeId: ev.nodeId, measurement: decision.measurement ?? '' };
}

/** A fresh challenge for tee_getEncryptionKey. */
export function newNonce(): string {
  return randomBytes(32).toString('hex');
}

/** A sealed, signed transaction, and the key that opens its receipt's answer (keep it; it never leaves the client). */
export interface SealedTransaction {
  tx: SignedTx;
  resultKey: Uint8Array;
}

/**
 * Seals a transaction's method and args to the verified network key (bound to
 * its chain, sender, nonce and contract) and signs it. With `session` (from
 * SealingSessions) it is the session's next message: validators then open it
 * without an X25519 agreement of its own.
 */
export function sealTransaction(body: PlainTxBody, signer: Ed25519Signer, key: VerifiedEncryptionKey, session?: SealingSession): SealedTransaction {
  const { method, args, ...envelope } = body;
  const { sealed, resultKey } = (session ?? new SealingSession(key.publicKey)).sealTx({ ...envelope, generation: key.generation }, { method, args });
  return { tx: signTx({ ...envelope, sealed }, signer), resultKey };
}

const MAX_CLIENT_SESSIONS = 1024;

/**
 * A client's sealing sessions, one per network key and sender (or caller): a
 * sender's transactions share one HPKE context, which links them no more than
 * their common sender already does; two senders never share one. Bounded,
 * oldest dropped (a dropped sender's next request starts a new session).
 */
export class SealingSessions {
  readonly #sessions = new Map<string, SealingSession>();

  for(key: VerifiedEncryptionKey, party: string): SealingSession {
    const id = `${key.generation}:${Buffer.from(key.publicKey).toString('hex')}:${party}`;
    let session = this.#sessions.get(id);
    if (!session || !equalBytes(session.networkKey, key.publicKey)) {
      session = new SealingSession(key.publicKey);
      this.#sessions.set(id, session);
      if (this.#sessions.size > MAX_CLIENT_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
    }
    return session;
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

export interface OpenedAnswer {
  result: JsonValue;
  events: { contract: string; name: string; data: JsonValue }[];
  error: { code: string; message: string } | null;
}

/** A sealed transaction's receipt with its answer opened (the sender's view). */
export function openReceipt(receipt: ReceiptView, resultKey: Uint8Array): ReceiptView & { opened: OpenedAnswer } {
  if (receipt.sealed === undefined) throw new ChainError('DECRYPT_FAILED', 'the receipt has no sealed answer (not a sealed transaction, or not executed)');
  const opened = openResult(resultKey, receipt.sealed) as unknown as OpenedAnswer;
  return { ...receipt, opened };
}

/** A sealed read-only call, ready to send as chain_call(contract, sealed); with `session`, that session's next message. */
export function sealCall(
  chainId: string,
  contract: string,
  method: string,
  args: JsonValue[],
  key: VerifiedEncryptionKey,
  as?: { signer: Ed25519Signer; now?: number; ttlMs?: number },
  session?: SealingSession,
): SealedRequest {
  const auth = as ? signCall(chainId, { contract, method, args }, as.signer, as.now ?? Date.now(), as.ttlMs) : undefined;
  return (session ?? new SealingSession(key.publicKey)).sealCall(
    { chainId, contract, generation: key.generation },
    { method, args, ...(auth ? { auth: auth as unknown as JsonValue } : {}) },
  );
}

/** Opens a sealed call's answer: the result, or throws the call's error (code and message as the enclave gave them). */
export function openCallAnswer(sealed: string, resultKey: Uint8Array): JsonValue {
  const answer = openCallResult(resultKey, sealed) as { result?: JsonValue; error?: { code: string; message: string; contractCode?: string } };
  if (answer.error) {
    throw new ChainError(answer.error.code as ChainError['code'], answer.error.message, answer.error.contractCode ? { contractCode: answer.error.contractCode } : undefined);
  }
  return answer.result ?? null;
}
