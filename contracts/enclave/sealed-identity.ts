import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import {
  ChainError,
  Ed25519Signer,
  generateHpkeKeyPair,
  hpkePublicKeyOf,
  fromHex,
  toHex,
  checkSign,
  compareSlots,
  generateEd25519KeyPair,
  isHexOfLength,
  type LastSign,
  type SafetyContext,
  type SafetyState,
  type SignerLock,
  type SignRequest,
} from '../../consensus/index.js';

/**
 * The enclave's long-lived identity: its vote key, its X25519 encryption key
 * (what peers release the consortium secret to), the consortium-secret
 * generations it holds, and its safety state (the last thing it signed and
 * the block it is locked on, see consensus/bft/safety-rules.ts); the
 * attestation-token key is derived from the vote key. They leave the enclave only sealed:
 * AES-256-GCM under a key the platform derives for this enclave program alone
 * (SEV-SNP MSG_KEY_REQ, SGX EGETKEY, or the virtual platform's derivation), so
 * the host can store the blob but neither read the key nor forge the state.
 *
 * Every seal carries a sequence number that grows with every signature. The
 * host keeps two slots and writes them in turn, so a write torn by a crash
 * leaves the previous seal intact; at start the enclave opens every blob the
 * host hands it and takes the one with the highest sequence number.
 *
 * What a seal cannot stop: a host that puts back an older blob (rollback) or
 * runs a copy of the data directory beside the original. Real deployments pair
 * this with a monotonic counter; the node also looks for its own newer
 * signatures before it signs (the double-sign guard, node/consensus).
 */

export { SIGN_STEP, type SignStep, type LastSign } from '../../consensus/index.js';

interface SealedPlaintext {
  v: 3;
  seq: number;
  privateKey: string;
  /** The enclave's X25519 encryption key (what peers release the consortium secret to). */
  encryptionKey: string;
  /** Consortium-secret generations this enclave holds (hex), by generation number. */
  secrets: Record<string, string>;
  lastSign: LastSign | null;
  lock: SignerLock | null;
}

/** A consortium secret held by this enclave: 32 bytes, kept only inside enclaves and in this seal. */
export interface HeldSecret {
  generation: number;
  secret: Uint8Array;
}

const AAD = Buffer.from('cloister/sealed-identity/v1');
/** The largest generation a sealed identity records (nine digits, as unseal reads them). */
export const MAX_GENERATION = 999_999_999;

export class SealedIdentity {
  readonly signer: Ed25519Signer;
  /**
   * The attestation-token key (Ed25519), derived from the vote key with HKDF
   * (its own domain): tokens for relying parties outside the chain are never
   * signed with the key whose signatures count as votes.
   */
  readonly #tokenKey: string;
  /** The attestation-token key's public half, hex (bound in evidence as `token`). */
  readonly tokenPublicKey: string;
  readonly #privateKey: string;
  readonly #encryptionKey: Uint8Array;
  /** Its public half, lowercase hex (bound in the enclave's evidence as `encryption`). */
  readonly encryptionPublicKey: string;
  #secrets: Map<number, Uint8Array>;
  #state: SafetyState;
  #seq: number;
  readonly #sealingKey: Uint8Array;
  /** Which of the blobs handed to open() this identity came from (null: a new identity). */
  readonly from: number | null;

  private constructor(plain: SealedPlaintext, sealingKey: Uint8Array, from: number | null) {
    this.from = from;
    this.#privateKey = plain.privateKey;
    this.signer = new Ed25519Signer(plain.privateKey);
    this.#tokenKey = Buffer.from(hkdfSync('sha256', fromHex(plain.privateKey)!, new Uint8Array(0), 'cloister/token-key/v1', 32)).toString('hex');
    this.tokenPublicKey = new Ed25519Signer(this.#tokenKey).publicKey;
    this.#encryptionKey = fromHex(plain.encryptionKey)!;
    this.encryptionPublicKey = toHex(hpkePublicKeyOf(this.#encryptionKey));
    this.#secrets = new Map(Object.entries(plain.secrets).map(([g, hex]) => [Number(g), fromHex(hex)!]));
    this.#state = { lastSign: plain.lastSign, lock: plain.lock };
    this.#seq = plain.seq;
    this.#sealingKey = sealingKey;
  }

  /**
   * The newest identity among the sealed blobs (by sequence number), or a new
   * identity when there are none. Blobs that do not open (a torn write) are
   * skipped; if none opens, SEAL_INVALID: they were sealed by another enclave
   * program or platform, or altered.
   */
  static open(sealed: readonly string[], sealingKey: Uint8Array): SealedIdentity {
    if (sealingKey.length !== 32) throw new ChainError('ENCLAVE_UNAVAILABLE', 'the platform sealing key must be 32 bytes');
    if (sealed.length === 0) {
      return new SealedIdentity(
        { v: 3, seq: 0, privateKey: generateEd25519KeyPair().privateKey, encryptionKey: newEncryptionKey(), secrets: {}, lastSign: null, lock: null },
        sealingKey,
        null,
      );
    }
    const opened: { plain: SealedPlaintext; index: number }[] = [];
    let firstError: unknown;
    sealed.forEach((blob, index) => {
      try {
        opened.push({ plain: unseal(blob, sealingKey), index });
      } catch (err) {
        firstError ??= err;
      }
    });
    if (opened.length === 0) throw firstError;
    if (opened.some((o) => o.plain.privateKey !== opened[0]!.plain.privateKey)) {
      throw new ChainError('SEAL_INVALID', 'the sealed blobs hold two different identities');
    }
    const best = opened.reduce((a, b) => (b.plain.seq > a.plain.seq ? b : a));
    return new SealedIdentity(best.plain, sealingKey, best.index);
  }

  /** The attestation-token signing key (raw Ed25519 seed, hex), for issueAttestationToken inside the enclave only. */
  get tokenSigningKey(): string {
    return this.#tokenKey;
  }

  /** The encryption key pair (X25519): peers seal the consortium secret to its public half. */
  get encryptionKeyPair(): { privateKey: Uint8Array; publicKey: Uint8Array } {
    return { privateKey: this.#encryptionKey, publicKey: fromHex(this.encryptionPublicKey)! };
  }

  /** The consortium-secret generations held, oldest first. */
  get secrets(): HeldSecret[] {
    return [...this.#secrets].sort((a, b) => a[0] - b[0]).map(([generation, secret]) => ({ generation, secret }));
  }

  /** Keeps (or replaces) a generation's secret; the caller reseals. */
  keepSecret(generation: number, secret: Uint8Array): void {
    // Exactly what unseal accepts: a blob this identity could not open again would lose the vote key.
    if (!Number.isSafeInteger(generation) || generation < 1 || generation > MAX_GENERATION || secret.length !== 32) {
      throw new ChainError('ECALL_INVALID', 'a consortium secret is 32 bytes of a generation from 1 to 999999999');
    }
    this.#secrets.set(generation, Uint8Array.from(secret));
    this.#seq++;
  }

  /** Forgets a generation's secret (a candidate the ledger did not commit); the caller reseals. */
  dropSecret(generation: number): void {
    if (this.#secrets.delete(generation)) this.#seq++;
  }

  get lastSign(): LastSign | null {
    return this.#state.lastSign ? { ...this.#state.lastSign } : null;
  }

  get lock(): SignerLock | null {
    return this.#state.lock ? { ...this.#state.lock } : null;
  }

  /**
   * Records a signature before it is made, under the safety rules (a conflict
   * is VOTE_CONFLICT, a vote without the prevotes it needs VOTE_UNJUSTIFIED).
   * Nothing changes when the request is refused.
   */
  claim(request: SignRequest, context: SafetyContext): void {
    const next = checkSign(this.#state, request, context);
    if (next !== this.#state) {
      this.#state = next;
      this.#seq++;
    }
  }

  /**
   * This key is proven (a verified signature in a commit certificate) to have
   * signed `slot`: from now on nothing at or below it is signed. Returns true
   * when the record moved (the caller reseals). Only ever forward.
   */
  advancePast(slot: LastSign): boolean {
    const last = this.#state.lastSign;
    if (last && compareSlots(slot, last) <= 0) return false;
    this.#state = { ...this.#state, lastSign: { ...slot } };
    this.#seq++;
    return true;
  }

  /** The identity sealed for the host to store (a fresh IV each time). */
  seal(): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#sealingKey, iv);
    cipher.setAAD(AAD);
    const plain: SealedPlaintext = {
      v: 3,
      seq: this.#seq,
      privateKey: this.#privateKey,
      encryptionKey: toHex(this.#encryptionKey),
      secrets: Object.fromEntries([...this.#secrets].map(([g, secret]) => [String(g), toHex(secret)])),
      lastSign: this.#state.lastSign,
      lock: this.#state.lock,
    };
    const ct = Buffer.concat([cipher.update(JSON.stringify(plain), 'utf8'), cipher.final()]);
    return JSON.stringify({ v: 1, iv: iv.toString('base64'), ct: ct.toString('base64'), tag: cipher.getAuthTag().toString('base64') });
  }
}

function isLastSign(v: unknown): v is LastSign {
  const s = v as LastSign;
  return (
    typeof s === 'object' && s !== null &&
    Number.isSafeInteger(s.height) && s.height >= 0 && Number.isSafeInteger(s.round) && s.round >= 0 &&
    Number.isSafeInteger(s.step) && s.step >= 1 && s.step <= 3 && typeof s.value === 'string'
  );
}

function isLock(v: unknown): v is SignerLock {
  const l = v as SignerLock;
  return typeof l === 'object' && l !== null && Number.isSafeInteger(l.height) && Number.isSafeInteger(l.round) && isHexOfLength(l.blockHash, 32);
}

function unseal(sealed: string, key: Uint8Array): SealedPlaintext {
  const bad = (why: string): never => {
    throw new ChainError('SEAL_INVALID', `the sealed enclave identity does not open: ${why}`);
  };
  let outer: { v?: unknown; iv?: unknown; ct?: unknown; tag?: unknown };
  try {
    outer = JSON.parse(sealed) as typeof outer;
  } catch {
    return bad('not JSON');
  }
  if (outer?.v !== 1 || typeof outer.iv !== 'string' || typeof outer.ct !== 'string' || typeof outer.tag !== 'string') {
    return bad('unknown format');
  }
  let text: string;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(outer.iv, 'base64'));
    decipher.setAAD(AAD);
    decipher.setAuthTag(Buffer.from(outer.tag, 'base64'));
    text = Buffer.concat([decipher.update(Buffer.from(outer.ct, 'base64')), decipher.final()]).toString('utf8');
  } catch {
    return bad('it was sealed by another enclave program or platform, or it was altered');
  }
  const plain = JSON.parse(text) as Omit<Partial<SealedPlaintext>, 'v'> & { v: number };
  if (!isHexOfLength(plain.privateKey, 32)) return bad('unknown content');
  const lastSign = plain.lastSign ?? null;
  if (lastSign !== null && !isLastSign(lastSign)) return bad('unknown content');
  // Older versions migrate: version 1 (no sequence number, no lock) is read as sequence 0; versions 1 and 2 had no
  // encryption key and no secrets, so one is made now (the key is new, so fresh evidence binds it; nothing was sealed to it).
  if (plain.v === 1) return { v: 3, seq: 0, privateKey: plain.privateKey, encryptionKey: newEncryptionKey(), secrets: {}, lastSign, lock: null };
  const lock = plain.lock ?? null;
  if ((plain.v !== 2 && plain.v !== 3) || !Number.isSafeInteger(plain.seq) || (lock !== null && !isLock(lock))) return bad('unknown content');
  if (plain.v === 2) return { v: 3, seq: plain.seq!, privateKey: plain.privateKey, encryptionKey: newEncryptionKey(), secrets: {}, lastSign, lock };
  const secrets = plain.secrets;
  if (!isHexOfLength(plain.encryptionKey, 32) || typeof secrets !== 'object' || secrets === null || Array.isArray(secrets)) return bad('unknown content');
  for (const [g, hex] of Object.entries(secrets)) if (!/^[1-9][0-9]{0,8}$/.test(g) || !isHexOfLength(hex, 32)) return bad('unknown content');
  return { v: 3, seq: plain.seq!, privateKey: plain.privateKey, encryptionKey: plain.encryptionKey, secrets: { ...secrets }, lastSign, lock };
}

function newEncryptionKey(): string {
  return toHex(generateHpkeKeyPair().privateKey);
}
