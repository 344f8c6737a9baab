import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  diffieHellman,
  generateKeyPairSync,
  type CipherGCMTypes,
  type KeyObject,
} from 'node:crypto';
import { ChainError } from '../errors.js';

/**
 * HPKE (RFC 9180) in base mode with DHKEM(X25519, HKDF-SHA256) and
 * HKDF-SHA256, composed from node:crypto's X25519, HMAC-SHA256 and AEADs.
 *
 * Why not `@hpke/core`: it is asynchronous (WebCrypto) and opens about 1,000
 * messages a second here, where these synchronous steps open about 6,000
 * (../shared/STACK.md); a confidential transaction is opened by every
 * validator. The construction follows the RFC step by step (section numbers
 * below); the tests check it against the RFC's published vectors and against
 * `@hpke/core` in both directions, which stays the reference.
 *
 * Only the parts Cloister needs: base mode (no PSK, no sender
 * authentication), single-shot and multi-message contexts, and the secret
 * export interface (section 5.3).
 */

export type HpkeAead = 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';

/** AEAD identifiers and key lengths (RFC 9180, section 7.3). Nonces are 12 bytes and tags 16 for all three. */
const AEADS: Record<HpkeAead, { id: number; nk: number }> = {
  'aes-128-gcm': { id: 0x0001, nk: 16 },
  'aes-256-gcm': { id: 0x0002, nk: 32 },
  'chacha20-poly1305': { id: 0x0003, nk: 32 },
};
const KEM_ID = 0x0020; // DHKEM(X25519, HKDF-SHA256)
const KDF_ID = 0x0001; // HKDF-SHA256
const NN = 12;
const NT = 16;
const NH = 32;
const X25519_LENGTH = 32;
const MODE_BASE = 0x00;

/** Cloister's suite: X25519, HKDF-SHA256, AES-256-GCM. */
export const DEFAULT_HPKE_AEAD: HpkeAead = 'aes-256-gcm';

export interface HpkeKeyPair {
  /** The raw 32-byte X25519 private key (Nsk). */
  privateKey: Uint8Array;
  /** The raw 32-byte X25519 public key (Npk): what `enc` and recipients are. */
  publicKey: Uint8Array;
}

const encoder = new TextEncoder();
const VERSION = encoder.encode('HPKE-v1');
const KEM_SUITE_ID = concat(encoder.encode('KEM'), i2osp(KEM_ID, 2));

const SUITE_IDS = new Map<HpkeAead, Uint8Array>();

function hpkeSuiteId(aead: HpkeAead): Uint8Array {
  let id = SUITE_IDS.get(aead);
  if (!id) {
    id = concat(encoder.encode('HPKE'), i2osp(KEM_ID, 2), i2osp(KDF_ID, 2), i2osp(AEADS[aead].id, 2));
    SUITE_IDS.set(aead, id);
  }
  return id;
}

// ------------------------------------------------------------ KDF (section 4)

function extract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  // HKDF-Extract (RFC 5869): HMAC-Hash(salt, IKM); an empty salt means Nh zero bytes.
  return new Uint8Array(createHmac('sha256', salt.length === 0 ? new Uint8Array(NH) : salt).update(ikm).digest());
}

function expand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  // HKDF-Expand (RFC 5869): T(i) = HMAC-Hash(PRK, T(i-1) | info | i).
  if (length > 255 * NH) throw new ChainError('INVALID_ARGS', `HKDF-Expand cannot produce ${length} bytes`);
  const out = new Uint8Array(length);
  let previous = new Uint8Array(0);
  for (let i = 1, filled = 0; filled < length; i++) {
    previous = new Uint8Array(createHmac('sha256', prk).update(previous).update(info).update(Uint8Array.of(i)).digest());
    out.set(previous.subarray(0, Math.min(NH, length - filled)), filled);
    filled += NH;
  }
  return out;
}

function labeledExtract(suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return extract(salt, concat(VERSION, suiteId, encoder.encode(label), ikm));
}

function labeledExpand(suiteId: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, length: number): Uint8Array {
  return expand(prk, concat(i2osp(length, 2), VERSION, suiteId, encoder.encode(label), info), length);
}

// ------------------------------------------------------------ DHKEM(X25519) (section 4.1, 7.1)

/** DeriveKeyPair (section 7.1.3): a key pair from at least 32 bytes of input keying material. */
export function deriveHpkeKeyPair(ikm: Uint8Array): HpkeKeyPair {
  if (ikm.length < X25519_LENGTH) throw new ChainError('INVALID_ARGS', 'HPKE key derivation needs at least 32 bytes of input keying material');
  const prk = labeledExtract(KEM_SUITE_ID, new Uint8Array(0), 'dkp_prk', ikm);
  const privateKey = labeledExpand(KEM_SUITE_ID, prk, 'sk', new Uint8Array(0), X25519_LENGTH);
  return { privateKey, publicKey: publicKeyOf(privateKey) };
}

/** A fresh random key pair (GenerateKeyPair). */
export function generateHpkeKeyPair(): HpkeKeyPair {
  const { privateKey } = generateKeyPairSync('x25519');
  const raw = rawPrivateKey(privateKey);
  return { privateKey: raw, publicKey: publicKeyOf(raw) };
}

/** The public key of a raw X25519 private key. */
export function hpkePublicKeyOf(privateKey: Uint8Array): Uint8Array {
  return publicKeyOf(checkLength(privateKey, 'private key'));
}

// DER prefixes of an X25519 key as PKCS#8 and SPKI (RFC 8410): node:crypto imports raw keys through them.
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/**
 * Imported keys, by their bytes' identity: importing a private key costs about
 * ten times an X25519 operation here, and a recipient's key (the network key in
 * an enclave) opens many messages. Weak: a key no one holds any more is dropped.
 * Keyed by the array, not its contents: a key's bytes are never changed in place.
 */
const privateKeyObjects = new WeakMap<Uint8Array, KeyObject>();

function privateKeyObject(raw: Uint8Array): KeyObject {
  let key = privateKeyObjects.get(raw);
  if (!key) {
    key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, raw]), format: 'der', type: 'pkcs8' });
    privateKeyObjects.set(raw, key);
  }
  return key;
}

/**
 * A raw public key as a KeyObject. Imported as a JWK: node:crypto takes that
 * about ten times faster than the same key wrapped in DER (SPKI), and every
 * opened message imports its sender's `enc`.
 */
function publicKeyObject(raw: Uint8Array): KeyObject {
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
  } catch (err) {
    throw new ChainError('HPKE_INVALID', `not an X25519 public key: ${(err as Error).message}`);
  }
}

function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  const spki = createPublicKey(privateKeyObject(privateKey)).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(SPKI_X25519_PREFIX.length));
}

function rawPrivateKey(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_X25519_PREFIX.length));
}

function dh(privateKey: KeyObject, publicKey: Uint8Array): Uint8Array {
  let shared: Uint8Array;
  try {
    shared = new Uint8Array(diffieHellman({ privateKey, publicKey: publicKeyObject(publicKey) }));
  } catch (err) {
    if (err instanceof ChainError) throw err;
    throw new ChainError('HPKE_INVALID', `X25519 failed: ${(err as Error).message}`);
  }
  // Section 7.1.4: an all-zero shared secret (a small-order public key) must be refused.
  if (shared.every((b) => b === 0)) throw new ChainError('HPKE_INVALID', 'X25519 with this public key gives the all-zero value (a small-order point)');
  return shared;
}

function extractAndExpand(dhValue: Uint8Array, kemContext: Uint8Array): Uint8Array {
  const prk = labeledExtract(KEM_SUITE_ID, new Uint8Array(0), 'eae_prk', dhValue);
  return labeledExpand(KEM_SUITE_ID, prk, 'shared_secret', kemContext, NH);
}

/** Encap (section 4.1) with a fresh ephemeral key, or the one given (tests: the RFC's vectors fix it). */
function encap(recipientPublicKey: Uint8Array, ephemeral?: HpkeKeyPair): { sharedSecret: Uint8Array; enc: Uint8Array } {
  let ephemeralKey: KeyObject;
  let enc: Uint8Array;
  if (ephemeral) {
    ephemeralKey = privateKeyObject(checkLength(ephemeral.privateKey, 'private key'));
    enc = ephemeral.publicKey;
  } else {
    const pair = generateKeyPairSync('x25519');
    ephemeralKey = pair.privateKey;
    // DER, not JWK: on Node 20, exporting an X25519 key as JWK can deadlock with the garbage collector
    // (ExportJWKEdKey allocates while it holds the key's lock, and a collected key-generation job takes that lock).
    enc = new Uint8Array(pair.publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_X25519_PREFIX.length));
  }
  const dhValue = dh(ephemeralKey, recipientPublicKey);
  return { sharedSecret: extractAndExpand(dhValue, concat(enc, recipientPublicKey)), enc };
}

function decap(enc: Uint8Array, recipient: HpkeKeyPair): Uint8Array {
  const dhValue = dh(privateKeyObject(recipient.privateKey), enc);
  return extractAndExpand(dhValue, concat(enc, recipient.publicKey));
}

// ------------------------------------------------------------ key schedule (section 5.1)

interface Schedule {
  key: Uint8Array;
  baseNonce: Uint8Array;
  exporterSecret: Uint8Array;
}

/**
 * key_schedule_context depends only on the suite and `info` in base mode, and
 * each application uses a few fixed infos: remembered (bounded), which saves two
 * of the nine HMACs of every open.
 */
const SCHEDULE_CONTEXTS = new Map<string, Uint8Array>();
const MAX_SCHEDULE_CONTEXTS = 64;

function scheduleContext(aead: HpkeAead, info: Uint8Array): Uint8Array {
  const id = `${aead}:${Buffer.from(info.buffer, info.byteOffset, info.byteLength).toString('hex')}`;
  let context = SCHEDULE_CONTEXTS.get(id);
  if (!context) {
    const suiteId = hpkeSuiteId(aead);
    const empty = new Uint8Array(0);
    const pskIdHash = labeledExtract(suiteId, empty, 'psk_id_hash', empty); // base mode: no PSK
    const infoHash = labeledExtract(suiteId, empty, 'info_hash', info);
    context = concat(Uint8Array.of(MODE_BASE), pskIdHash, infoHash);
    if (SCHEDULE_CONTEXTS.size < MAX_SCHEDULE_CONTEXTS) SCHEDULE_CONTEXTS.set(id, context);
  }
  return context;
}

function keySchedule(aead: HpkeAead, sharedSecret: Uint8Array, info: Uint8Array): Schedule {
  const suiteId = hpkeSuiteId(aead);
  const empty = new Uint8Array(0);
  const context = scheduleContext(aead, info);
  const secret = labeledExtract(suiteId, sharedSecret, 'secret', empty);
  return {
    key: labeledExpand(suiteId, secret, 'key', context, AEADS[aead].nk),
    baseNonce: labeledExpand(suiteId, secret, 'base_nonce', context, NN),
    exporterSecret: labeledExpand(suiteId, secret, 'exp', context, NH),
  };
}

// ------------------------------------------------------------ contexts (sections 5.2, 5.3)

/** The part both sides share: the AEAD with its sequence number, and the exporter. */
class HpkeContext {
  #seq = 0;
  #aeadKey: KeyObject | undefined;
  constructor(
    protected readonly aead: HpkeAead,
    protected readonly schedule: Schedule,
  ) {}

  /** The AEAD key, imported once per context (a context that carries many messages reuses it). */
  protected get aeadKey(): KeyObject {
    return (this.#aeadKey ??= createSecretKey(this.schedule.key));
  }

  /** Section 5.3: a secret of `length` bytes bound to this context and `exporterContext`. */
  export(exporterContext: Uint8Array, length: number): Uint8Array {
    return labeledExpand(hpkeSuiteId(this.aead), this.schedule.exporterSecret, 'sec', exporterContext, length);
  }

  /** The sequence number the next message of this context is sealed or opened under. */
  get seq(): number {
    return this.#seq;
  }

  /** The nonce of the next message, and the sequence number moves on (section 5.2). */
  protected nextNonce(): Buffer {
    if (this.#seq >= Number.MAX_SAFE_INTEGER) throw new ChainError('HPKE_INVALID', 'HPKE message limit of this context reached');
    return this.nonceAt(this.#seq++);
  }

  /** ComputeNonce(seq) of section 5.2: base_nonce XOR I2OSP(seq, Nn). */
  protected nonceAt(seq: number): Buffer {
    if (!Number.isSafeInteger(seq) || seq < 0) throw new ChainError('HPKE_INVALID', 'an HPKE sequence number is a non-negative safe integer');
    const nonce = Buffer.from(this.schedule.baseNonce);
    for (let i = NN - 1, rest = seq; i >= 0 && rest > 0; i--) {
      nonce[i]! ^= rest % 256;
      rest = Math.floor(rest / 256);
    }
    return nonce;
  }
}

// node:crypto types the three AEADs' options alike only for GCM names; ChaCha20-Poly1305 takes the same (authTagLength, setAAD).
export class HpkeSenderContext extends HpkeContext {
  constructor(
    aead: HpkeAead,
    schedule: Schedule,
    /** The encapsulated key: sent with the ciphertexts. */
    readonly enc: Uint8Array,
  ) {
    super(aead, schedule);
  }

  seal(aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const cipher = createCipheriv(this.aead as CipherGCMTypes, this.aeadKey, this.nextNonce(), { authTagLength: NT });
    cipher.setAAD(aad, { plaintextLength: plaintext.length });
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return new Uint8Array(Buffer.concat([body, cipher.getAuthTag()]));
  }
}

export class HpkeRecipientContext extends HpkeContext {
  /** Throws ChainError DECRYPT_FAILED when the ciphertext, the AAD, the key or the order is not the sender's. */
  open(aad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (ciphertext.length < NT) throw new ChainError('DECRYPT_FAILED', 'HPKE ciphertext shorter than its tag');
    return this.#openWith(this.nextNonce(), aad, ciphertext);
  }

  /**
   * Opens the message the sender sealed as its `seq`-th (counting from 0),
   * without moving this context's own sequence: for applications whose
   * messages arrive out of order or are opened by several parties, the
   * sender's sequence number travels with the message (section 5.2 leaves
   * keeping the two sides' nonces aligned to the application). Replay is the
   * application's to refuse (here, the AAD and the chain's nonces do).
   */
  openAt(seq: number, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (ciphertext.length < NT) throw new ChainError('DECRYPT_FAILED', 'HPKE ciphertext shorter than its tag');
    return this.#openWith(this.nonceAt(seq), aad, ciphertext);
  }

  #openWith(nonce: Buffer, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    const decipher = createDecipheriv(this.aead as CipherGCMTypes, this.aeadKey, nonce, { authTagLength: NT });
    decipher.setAuthTag(ciphertext.subarray(ciphertext.length - NT));
    decipher.setAAD(aad, { plaintextLength: ciphertext.length - NT });
    try {
      return new Uint8Array(Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - NT)), decipher.final()]));
    } catch {
      throw new ChainError('DECRYPT_FAILED', 'HPKE ciphertext does not open: wrong key, tampered, or bound to other data');
    }
  }
}

export interface HpkeOptions {
  aead?: HpkeAead;
  /** The ephemeral key pair; only tests pass one (the RFC's vectors fix it). Fresh and random otherwise. */
  ephemeral?: HpkeKeyPair;
}

/** SetupBaseS: a context that seals to `recipientPublicKey` (32 raw bytes). */
export function setupHpkeSender(recipientPublicKey: Uint8Array, info: Uint8Array, options: HpkeOptions = {}): HpkeSenderContext {
  const aead = options.aead ?? DEFAULT_HPKE_AEAD;
  const { sharedSecret, enc } = encap(checkLength(recipientPublicKey, 'public key'), options.ephemeral);
  return new HpkeSenderContext(aead, keySchedule(aead, sharedSecret, info), enc);
}

/** SetupBaseR: a context that opens what was sealed to `recipient` under `enc`. */
export function setupHpkeRecipient(enc: Uint8Array, recipient: HpkeKeyPair, info: Uint8Array, options: Pick<HpkeOptions, 'aead'> = {}): HpkeRecipientContext {
  const aead = options.aead ?? DEFAULT_HPKE_AEAD;
  const sharedSecret = decap(checkLength(enc, 'encapsulated key'), {
    privateKey: checkLength(recipient.privateKey, 'private key'),
    publicKey: checkLength(recipient.publicKey, 'public key'),
  });
  return new HpkeRecipientContext(aead, keySchedule(aead, sharedSecret, info));
}

/** Single-shot Seal (section 6.1): one message, one fresh encapsulation. */
export function hpkeSeal(
  recipientPublicKey: Uint8Array,
  info: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
  options: HpkeOptions = {},
): { enc: Uint8Array; ciphertext: Uint8Array } {
  const sender = setupHpkeSender(recipientPublicKey, info, options);
  return { enc: sender.enc, ciphertext: sender.seal(aad, plaintext) };
}

/** Single-shot Open (section 6.1). Throws ChainError DECRYPT_FAILED or HPKE_INVALID. */
export function hpkeOpen(
  recipient: HpkeKeyPair,
  enc: Uint8Array,
  info: Uint8Array,
  aad: Uint8Array,
  ciphertext: Uint8Array,
  options: Pick<HpkeOptions, 'aead'> = {},
): Uint8Array {
  return setupHpkeRecipient(enc, recipient, info, options).open(aad, ciphertext);
}

// ------------------------------------------------------------ bytes

function checkLength(bytes: Uint8Array, what: string): Uint8Array {
  if (!(bytes instanceof Uint8Array) || bytes.length !== X25519_LENGTH) {
    throw new ChainError('HPKE_INVALID', `an X25519 ${what} is ${X25519_LENGTH} bytes`);
  }
  return bytes;
}

function i2osp(value: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1, v = value; i >= 0; i--, v = Math.floor(v / 256)) out[i] = v % 256;
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
