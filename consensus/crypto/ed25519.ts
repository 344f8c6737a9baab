import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { fromHex, isHexOfLength, toHex } from '../encoding/hex.js';
import { classifyEd25519PublicKey, SMALL_ORDER_ED25519_POINTS } from './ed25519-key-rule.js';

/**
 * ed25519 keys for users, members and enclaves.
 *
 * Every node applies the one rule written down in `ed25519-key-rule.ts` (a
 * canonical public key not of small order, S < L, R not of small order, the
 * cofactorless equation with R compared as bytes) so that all nodes accept
 * exactly the same signatures; a signature one node accepts and another
 * rejects would split consensus. OpenSSL (node:crypto) does the verification.
 * Public keys are cached as KeyObjects: rebuilding one per verify costs 2x.
 */
export interface Ed25519KeyPair {
  /** 32-byte public key, lowercase hex. */
  publicKey: string;
  /** 32-byte private seed, lowercase hex. Never log it. */
  privateKey: string;
}

const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function generateEd25519KeyPair(): Ed25519KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
  const priv = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_PREFIX.length);
  return { publicKey: toHex(pub), privateKey: toHex(priv) };
}

export function publicKeyFromPrivate(privateKeyHex: string): string {
  const key = privateKeyObject(privateKeyHex);
  return toHex(createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length));
}

function privateKeyObject(privateKeyHex: string): KeyObject {
  const seed = fromHex(privateKeyHex);
  if (!seed || seed.length !== 32) throw new TypeError('an ed25519 private key is 32 bytes of lowercase hex');
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/** A signer that keeps its KeyObject; use one per long-lived key. */
export class Ed25519Signer {
  readonly publicKey: string;
  readonly #key: KeyObject;
  constructor(privateKeyHex: string) {
    this.#key = privateKeyObject(privateKeyHex);
    this.publicKey = toHex(createPublicKey(this.#key).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length));
  }
  sign(message: Uint8Array): string {
    return toHex(sign(null, message, this.#key));
  }
  /** Keys are not printable. */
  toJSON(): { publicKey: string } {
    return { publicKey: this.publicKey };
  }
}

const KEY_CACHE_LIMIT = 50_000;
const keyCache = new Map<string, KeyObject>();

/** The KeyObject of an acceptable key; undefined for a key the rule refuses (those are not cached: classifying is cheap). */
function publicKeyObject(publicKeyHex: string): KeyObject | undefined {
  let key = keyCache.get(publicKeyHex);
  if (key) return key;
  if (classifyEd25519PublicKey(publicKeyHex) !== undefined) return undefined;
  try {
    key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from(publicKeyHex, 'hex')]), format: 'der', type: 'spki' });
  } catch {
    return undefined;
  }
  if (keyCache.size >= KEY_CACHE_LIMIT) {
    // Drop the oldest entry (Map keeps insertion order).
    const oldest = keyCache.keys().next().value;
    if (oldest !== undefined) keyCache.delete(oldest);
  }
  keyCache.set(publicKeyHex, key);
  return key;
}

/**
 * Verifies an ed25519 signature under the rule of ed25519-key-rule.ts: false
 * for a refused key, a small-order R, or any malformed key or signature. Never throws.
 */
export function verifyEd25519(publicKeyHex: string, message: Uint8Array, signatureHex: string): boolean {
  if (!isHexOfLength(signatureHex, 64)) return false;
  if (SMALL_ORDER_ED25519_POINTS.has(signatureHex.slice(0, 64))) return false;
  const key = publicKeyObject(publicKeyHex);
  if (!key) return false;
  try {
    return verify(null, message, key, Buffer.from(signatureHex, 'hex'));
  } catch {
    return false;
  }
}
