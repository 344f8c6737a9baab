import { createCipheriv, createDecipheriv, createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { ChainError, canonicalize, type JsonValue } from '../../consensus/index.js';
import type { StateAccess } from '../sandbox/index.js';
import { DeferredValue, stateKey, type StateOverlay } from './state.js';

const TAG_BYTES = 16;
const IV_BYTES = 12;
const MAX_CACHED_KEYS = 65_536;
/** What the cache of opened values may hold, in characters of stored and plain text together. */
const MAX_OPENED_CHARS = 32 * 1024 * 1024;

/**
 * How a confidential contract's state is stored: neither its keys nor its
 * values appear in the clear on any node's disk, and the state commitment
 * (the state tree over the stored bytes) exposes no unkeyed hash of a
 * plaintext, so nobody can test guesses of a low-entropy value.
 *
 *   stored key   = c:<contract>:~<hex HMAC-SHA256(macKey, "key" 0x00 key)>
 *   stored value = JSON string "<generation>:<base64 iv | ciphertext | tag>"
 *                  AES-256-GCM under encKey, AAD the stored key,
 *                  iv = HMAC-SHA256(macKey, "iv" 0x00 stored key 0x00 plaintext)[0..12]
 *
 * The IV is synthetic (the SIV construction of RFC 5297, with GCM as the
 * cipher): every honest enclave writes the same bytes for the same state, as
 * the state root requires, and an IV repeats only for an identical key and
 * value, which then reveals no more than that the write repeated. The tag
 * detects a stored value altered on disk (beyond the state-root check at start).
 * macKey and encKey are the two halves of the contract's 64-byte state key.
 *
 * What this enclave sealed or opened is remembered (bounded), by stored key and
 * stored text together: the same text under the same stored key always opens
 * to the same plaintext, so a hit is an open without the cipher, and a value
 * moved to another key on disk still has to authenticate.
 */
export class StateCipher {
  // Imported once: node:crypto re-imports raw key bytes on every HMAC and cipher otherwise.
  readonly #macKey: KeyObject;
  readonly #encKey: KeyObject;
  /** Stored keys already derived (a transaction reads and writes the same keys): bounded, oldest forgotten first. */
  readonly #storedKeys = new Map<string, string>();
  /** `<stored key>\0<stored text>` → plaintext, for values this enclave sealed or opened; oldest forgotten first. */
  readonly #opened = new Map<string, string>();
  #openedChars = 0;

  constructor(keyMaterial: Uint8Array, readonly generation: number) {
    if (keyMaterial.length !== 64) throw new ChainError('INVALID_ARGS', 'a state key is 64 bytes');
    this.#macKey = createSecretKey(keyMaterial.subarray(0, 32));
    this.#encKey = createSecretKey(keyMaterial.subarray(32));
  }

  storedKey(contract: string, key: string): string {
    const id = `${contract}\0${key}`;
    let stored = this.#storedKeys.get(id);
    if (stored === undefined) {
      const mac = createHmac('sha256', this.#macKey).update('key\0').update(key, 'utf8').digest('hex');
      stored = stateKey.contract(contract, `~${mac}`);
      this.#storedKeys.set(id, stored);
      if (this.#storedKeys.size > MAX_CACHED_KEYS) this.#storedKeys.delete(this.#storedKeys.keys().next().value!);
    }
    return stored;
  }

  seal(storedKey: string, plaintext: string): string {
    const iv = createHmac('sha256', this.#macKey).update('iv\0').update(storedKey, 'utf8').update('\0').update(plaintext, 'utf8').digest().subarray(0, IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#encKey, iv);
    cipher.setAAD(Buffer.from(storedKey, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const sealed = `${this.generation}:${Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64')}`;
    this.#remember(storedKey, sealed, plaintext);
    return sealed;
  }

  #remember(storedKey: string, sealed: string, plaintext: string): void {
    const id = `${storedKey}\0${sealed}`;
    if (this.#opened.has(id)) return;
    this.#opened.set(id, plaintext);
    this.#openedChars += id.length + plaintext.length;
    while (this.#openedChars > MAX_OPENED_CHARS && this.#opened.size > 0) {
      const [oldest, plain] = this.#opened.entries().next().value!;
      this.#opened.delete(oldest);
      this.#openedChars -= oldest.length + plain.length;
    }
  }

  open(storedKey: string, stored: unknown): string {
    if (typeof stored === 'string') {
      const known = this.#opened.get(`${storedKey}\0${stored}`);
      if (known !== undefined) return known;
    }
    const prefix = `${this.generation}:`;
    const body = typeof stored === 'string' && stored.startsWith(prefix) ? stored.slice(prefix.length) : '';
    const bytes = Buffer.from(body, 'base64');
    // Only the exact bytes seal() writes: no other spelling of the generation, no lenient base64 (padding bits, junk).
    if (bytes.length < IV_BYTES + TAG_BYTES || bytes.toString('base64') !== body) {
      throw new ChainError('STATE_INVALID', `the stored value of ${storedKey} is not a confidential value of generation ${this.generation}`);
    }
    const decipher = createDecipheriv('aes-256-gcm', this.#encKey, bytes.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(storedKey, 'utf8'));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    let plaintext: string;
    try {
      plaintext = Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new ChainError('STATE_INVALID', `the stored value of ${storedKey} was altered (it does not authenticate)`);
    }
    this.#remember(storedKey, stored as string, plaintext);
    return plaintext;
  }
}

function parseStored(storedKey: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ChainError('STATE_INVALID', `the stored value of ${storedKey} is not JSON`);
  }
}

/**
 * A confidential contract's state, as the sandbox sees it: plain keys and JSON
 * values, stored sealed. A write is sealed when the block's write set is made
 * (DeferredValue): once per key and block, and never for a transaction that fails.
 */
export function confidentialStateAccess(overlay: StateOverlay, contract: string, cipher: StateCipher): StateAccess {
  return {
    get: (key) => {
      const stored = cipher.storedKey(contract, key);
      const value = overlay.readLayered(stored);
      if (value === undefined) return null;
      if (value instanceof DeferredValue) return JSON.parse(value.plain) as JsonValue;
      return JSON.parse(cipher.open(stored, parseStored(stored, value))) as JsonValue;
    },
    set: (key, value) => {
      const stored = cipher.storedKey(contract, key);
      const plain = canonicalize(value);
      overlay.write(stored, new DeferredValue(plain, () => canonicalize(cipher.seal(stored, plain))));
    },
    delete: (key) => overlay.write(cipher.storedKey(contract, key), null),
  };
}
