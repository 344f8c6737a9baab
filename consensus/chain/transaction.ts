import { ChainError } from '../errors.js';
import { canonicalBytes, isCanonicalJsonValue, type JsonValue } from '../encoding/canonical-json.js';
import { isHexOfLength } from '../encoding/hex.js';
import { sha256Hex } from '../crypto/hash.js';
import { signingMessage } from '../crypto/signing.js';
import { verifyEd25519, type Ed25519Signer } from '../crypto/ed25519.js';
import { classifyEd25519PublicKey, describeEd25519KeyProblem } from '../crypto/ed25519-key-rule.js';

/** What the sender signs. */
export interface TxBody {
  /** The chain this transaction is for: a signature never replays on another chain. */
  chainId: string;
  /** The sender's ed25519 public key, lowercase hex. */
  from: string;
  /** The sender's next nonce: 0 for its first transaction, then +1 each. */
  nonce: number;
  contract: string;
  method: string;
  args: JsonValue[];
  gasLimit: number;
}

export interface SignedTx extends TxBody {
  /** ed25519 signature over signingMessage('tx', body), lowercase hex. */
  signature: string;
}

export interface TxLimits {
  maxTxBytes: number;
  maxGasLimit: number;
}

export const DEFAULT_TX_LIMITS: TxLimits = { maxTxBytes: 32 * 1024, maxGasLimit: 50_000_000 };

export const CONTRACT_NAME_RE = /^[a-z][a-z0-9_-]{0,63}$/;
export const METHOD_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const CHAIN_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

const TX_KEYS = ['args', 'chainId', 'contract', 'from', 'gasLimit', 'method', 'nonce', 'signature'];

export function txBodyOf(tx: SignedTx): TxBody {
  return {
    chainId: tx.chainId,
    from: tx.from,
    nonce: tx.nonce,
    contract: tx.contract,
    method: tx.method,
    args: tx.args,
    gasLimit: tx.gasLimit,
  };
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
  for (const key of Object.keys(obj)) if (!TX_KEYS.includes(key)) fail(`unknown field "${key}"`);
  const { chainId, from, nonce, contract, method, args, gasLimit, signature } = obj;
  if (typeof chainId !== 'string' || !CHAIN_ID_RE.test(chainId)) fail('chainId must be 1-64 characters of [A-Za-z0-9._-]');
  if (!isHexOfLength(from, 32)) fail('from must be a 32-byte ed25519 public key in lowercase hex');
  const keyProblem = classifyEd25519PublicKey(from as string);
  if (keyProblem) fail(`from is not an acceptable ed25519 public key: ${describeEd25519KeyProblem(keyProblem)}`);
  if (typeof nonce !== 'number' || !Number.isSafeInteger(nonce) || nonce < 0) fail('nonce must be a non-negative integer');
  if (typeof contract !== 'string' || !CONTRACT_NAME_RE.test(contract)) fail('contract must match ' + CONTRACT_NAME_RE.source);
  if (typeof method !== 'string' || !METHOD_NAME_RE.test(method)) fail('method must match ' + METHOD_NAME_RE.source);
  if (!Array.isArray(args)) fail('args must be an array');
  if (!isCanonicalJsonValue(args)) fail('args must be JSON with integer numbers only, nested at most 64 deep');
  if (typeof gasLimit !== 'number' || !Number.isSafeInteger(gasLimit) || gasLimit <= 0) fail('gasLimit must be a positive integer');
  if (!isHexOfLength(signature, 64)) fail('signature must be 64 bytes in lowercase hex');
  return {
    chainId: chainId as string,
    from: from as string,
    nonce: nonce as number,
    contract: contract as string,
    method: method as string,
    args: args as JsonValue[],
    gasLimit: gasLimit as number,
    signature: signature as string,
  };
}

export interface CheckedTx {
  tx: SignedTx;
  hash: string;
  size: number;
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
  if (bytes.length > limits.maxTxBytes) {
    throw new ChainError('TX_TOO_LARGE', `transaction is ${bytes.length} bytes, the limit is ${limits.maxTxBytes}`, {
      size: bytes.length,
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
  const hash = sha256Hex(bytes);
  // The hash covers the signature, so a remembered hash means this exact signed transaction verified.
  if (alreadyVerified?.(hash)) return { tx, hash, size: bytes.length };
  if (!verifyEd25519(tx.from, signingMessage('tx', txBodyOf(tx)), tx.signature)) {
    throw new ChainError('TX_BAD_SIGNATURE', 'transaction signature does not verify against its sender key');
  }
  return { tx, hash, size: bytes.length };
}
