import { ChainError } from '../errors.js';
import { canonicalBytes, isCanonicalJsonValue, type JsonValue } from '../encoding/canonical-json.js';
import { isHexOfLength } from '../encoding/hex.js';
import { sha256Hex } from '../crypto/hash.js';
import { signingMessage } from '../crypto/signing.js';
import { verifyEd25519, type Ed25519Signer } from '../crypto/ed25519.js';
import { classifyEd25519PublicKey, describeEd25519KeyProblem } from '../crypto/ed25519-key-rule.js';

/** The fields every transaction has in the clear. */
export interface TxEnvelope {
  /** The chain this transaction is for: a signature never replays on another chain. */
  chainId: string;
  /** The sender's ed25519 public key, lowercase hex. */
  from: string;
  /** The sender's next nonce: 0 for its first transaction, then +1 each. */
  nonce: number;
  contract: string;
  gasLimit: number;
}

/** A transaction to a public contract: the method and its arguments in the clear. */
export interface PlainTxBody extends TxEnvelope {
  method: string;
  args: JsonValue[];
}

/**
 * A transaction to a confidential contract: the method and arguments sealed
 * to the network encryption key (consensus/chain/confidential.ts), bound to
 * this transaction's chain, sender, nonce and contract.
 */
export interface SealedTxBody extends TxEnvelope {
  sealed: SealedPayload;
}

/** HPKE (RFC 9180) ciphertext to the network key of a consortium-secret generation. */
export interface SealedPayload {
  /** The consortium-secret generation whose network key it was sealed to. */
  generation: number;
  /** The HPKE encapsulated key, 32 bytes in lowercase hex: one per sealing session. */
  enc: string;
  /**
   * The message's sequence number in its sealing session (RFC 9180 section 5.2),
   * present only when it is not 0: a client that seals many transactions to
   * one key in one HPKE context saves every validator an X25519 agreement per
   * transaction (consensus/chain/confidential.ts, SealingSession).
   */
  seq?: number;
  /** The HPKE ciphertext (with its tag), base64. */
  ct: string;
}

/** What the sender signs. */
export type TxBody = PlainTxBody | SealedTxBody;

/** ed25519 signature over signingMessage('tx', body), lowercase hex. */
export type SignedTx = TxBody & { signature: string };
export type SignedPlainTx = PlainTxBody & { signature: string };
export type SignedSealedTx = SealedTxBody & { signature: string };

export function isSealedTx<T extends TxBody>(tx: T): tx is Extract<T, SealedTxBody> {
  return (tx as Partial<SealedTxBody>).sealed !== undefined;
}

/** Ciphertexts of at most this many base64 characters (the transaction size limit binds first in practice). */
export const MAX_SEALED_CT_LENGTH = 1_400_000;

export interface TxLimits {
  maxTxBytes: number;
  maxGasLimit: number;
}

export const DEFAULT_TX_LIMITS: TxLimits = { maxTxBytes: 32 * 1024, maxGasLimit: 50_000_000 };

export const CONTRACT_NAME_RE = /^[a-z][a-z0-9_-]{0,63}$/;
export const METHOD_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const CHAIN_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

const TX_KEYS = ['args', 'chainId', 'contract', 'from', 'gasLimit', 'method', 'nonce', 'signature'];
const SEALED_TX_KEYS = ['chainId', 'contract', 'from', 'gasLimit', 'nonce', 'sealed', 'signature'];
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

export function txBodyOf(tx: SignedTx): TxBody {
  const envelope = { chainId: tx.chainId, from: tx.from, nonce: tx.nonce, contract: tx.contract };
  if (isSealedTx(tx)) return { ...envelope, sealed: tx.sealed, gasLimit: tx.gasLimit };
  return { ...envelope, method: tx.method, args: tx.args, gasLimit: tx.gasLimit };
}

export function signTx(body: TxBody, signer: Ed25519Signer): SignedTx {
  if (body.from !== signer.publicKey) throw new TypeError('tx.from must be the signer public key');
  return { ...body, signature: signer.sign(signingMessage('tx', body)) };
}

/** The transaction hash: SHA-256 of the canonical encoding of the signed transaction. */
export function txHash(tx: SignedTx): string {
  return sha256Hex(canonicalBytes(tx));
}

export function encodeTx(tx: SignedTx): Uint8Array {
  return canonicalBytes(tx);
}

/**
 * Checks the shape of a transaction that came from outside (a client or a peer)
 * and returns it as a SignedTx with no extra fields. Throws TX_MALFORMED.
 *
 * `from` must also be an acceptable ed25519 public key (ed25519-key-rule.ts:
 * a canonical encoding, not of small order). A refused sender is
 * TX_MALFORMED, not TX_BAD_SIGNATURE: no signature can ever make the
 * transaction valid.
 */
export function parseSignedTx(raw: unknown): SignedTx {
  const fail = (why: string): never => {
    throw new ChainError('TX_MALFORMED', `malformed transaction: ${why}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('not an object');
  const obj = raw as Record<string, unknown>;
  const sealedTx = Object.prototype.hasOwnProperty.call(obj, 'sealed');
  const allowed = sealedTx ? SEALED_TX_KEYS : TX_KEYS;
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) fail(sealedTx && (key === 'method' || key === 'args') ? `a sealed transaction carries no "${key}" in the clear` : `unknown field "${key}"`);
  }
  const { chainId, from, nonce, contract, method, args, gasLimit, signature } = obj;
  if (typeof chainId !== 'string' || !CHAIN_ID_RE.test(chainId)) fail('chainId must be 1-64 characters of [A-Za-z0-9._-]');
  if (!isHexOfLength(from, 32)) fail('from must be a 32-byte ed25519 public key in lowercase hex');
  const keyProblem = classifyEd25519PublicKey(from as string);
  if (keyProblem) fail(`from is not an acceptable ed25519 public key: ${describeEd25519KeyProblem(keyProblem)}`);
  if (typeof nonce !== 'number' || !Number.isSafeInteger(nonce) || nonce < 0) fail('nonce must be a non-negative integer');
  if (typeof contract !== 'string' || !CONTRACT_NAME_RE.test(contract)) fail('contract must match ' + CONTRACT_NAME_RE.source);
  // The call: sealed, or the method and arguments in the clear.
  let call: { sealed: SealedPayload } | { method: string; args: JsonValue[] };
  if (sealedTx) {
    call = { sealed: parseSealedPayload(obj['sealed'], fail) };
  } else {
    if (typeof method !== 'string' || !METHOD_NAME_RE.test(method)) fail('method must match ' + METHOD_NAME_RE.source);
    if (!Array.isArray(args)) fail('args must be an array');
    if (!isCanonicalJsonValue(args)) fail('args must be JSON with integer numbers only, nested at most 64 deep');
    call = { method: method as string, args: args as JsonValue[] };
  }
  if (typeof gasLimit !== 'number' || !Number.isSafeInteger(gasLimit) || gasLimit <= 0) fail('gasLimit must be a positive integer');
  if (!isHexOfLength(signature, 64)) fail('signature must be 64 bytes in lowercase hex');
  return {
    chainId: chainId as string,
    from: from as string,
    nonce: nonce as number,
    contract: contract as string,
    ...call,
    gasLimit: gasLimit as number,
    signature: signature as string,
  };
}

/** Checks the shape of a sealed payload ({generation, enc, ct}); `fail` throws the caller's error. */
export function parseSealedPayload(raw: unknown, fail: (why: string) => never): SealedPayload {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('sealed must be {generation, enc, seq?, ct}');
  const p = raw as Record<string, unknown>;
  for (const key of Object.keys(p)) if (key !== 'generation' && key !== 'enc' && key !== 'seq' && key !== 'ct') fail(`unknown field "sealed.${key}"`);
  // One spelling per message: the first of a session (0) carries no seq.
  const seq = p['seq'];
  if (seq !== undefined && (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1)) fail('sealed.seq, when present, must be a positive integer (absent for 0)');
  if (typeof p['generation'] !== 'number' || !Number.isSafeInteger(p['generation']) || p['generation'] < 1) fail('sealed.generation must be a positive integer');
  if (!isHexOfLength(p['enc'], 32)) fail('sealed.enc must be 32 bytes in lowercase hex');
  const ct = p['ct'];
  if (typeof ct !== 'string' || ct.length < 24 || ct.length > MAX_SEALED_CT_LENGTH || ct.length % 4 !== 0 || !BASE64_RE.test(ct)) {
    fail('sealed.ct must be base64 of at least one tag (16 bytes)');
  }
  return { generation: p['generation'] as number, enc: p['enc'] as string, ...(seq !== undefined ? { seq: seq as number } : {}), ct: ct as string };
}

export interface CheckedTx {
  tx: SignedTx;
  hash: string;
  size: number;
}

/** Size, chain id and gas limit: what may change with height (governance sets the limits). */
function checkTxLimits(tx: SignedTx, size: number, chainId: string, limits: TxLimits): void {
  if (size > limits.maxTxBytes) {
    throw new ChainError('TX_TOO_LARGE', `transaction is ${size} bytes, the limit is ${limits.maxTxBytes}`, {
      size,
      limit: limits.maxTxBytes,
    });
  }
  if (tx.chainId !== chainId) {
    throw new ChainError('TX_WRONG_CHAIN', `transaction is for chain "${tx.chainId}", this is "${chainId}"`, {
      expected: chainId,
      got: tx.chainId,
    });
  }
  if (tx.gasLimit > limits.maxGasLimit) {
    throw new ChainError('TX_GAS_LIMIT', `gasLimit ${tx.gasLimit} exceeds the maximum ${limits.maxGasLimit}`, {
      limit: limits.maxGasLimit,
    });
  }
}

/**
 * A transaction that passed checkTxStateless before (its shape, hash, size and signature are
 * known), checked again against the limits of now: they may have changed since.
 */
export function recheckTxLimits(checked: CheckedTx, chainId: string, limits: TxLimits): CheckedTx {
  checkTxLimits(checked.tx, checked.size, chainId, limits);
  return checked;
}

/**
 * Every check that needs no chain state, cheapest first: shape, size, chain id,
 * gas limit, then the signature. The sender is to blame for every failure.
 */
export function checkTxStateless(
  raw: unknown,
  chainId: string,
  limits: TxLimits = DEFAULT_TX_LIMITS,
  /** Lets a caller that already verified this exact transaction (by hash) skip the signature check. */
  alreadyVerified?: (hash: string) => boolean,
): CheckedTx {
  const tx = parseSignedTx(raw);
  const bytes = canonicalBytes(tx);
  checkTxLimits(tx, bytes.length, chainId, limits);
  const hash = sha256Hex(bytes);
  // The hash covers the signature, so a remembered hash means this exact signed transaction verified.
  if (alreadyVerified?.(hash)) return { tx, hash, size: bytes.length };
  if (!verifyEd25519(tx.from, signingMessage('tx', txBodyOf(tx)), tx.signature)) {
    throw new ChainError('TX_BAD_SIGNATURE', 'transaction signature does not verify against its sender key');
  }
  return { tx, hash, size: bytes.length };
}
