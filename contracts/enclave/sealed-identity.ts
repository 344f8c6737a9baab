import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ChainError, Ed25519Signer, generateEd25519KeyPair, isHexOfLength } from '../../consensus/index.js';

/**
 * The enclave's long-lived identity: its vote key and the last thing it signed
 * (Tendermint's "last sign state"). Both leave the enclave only sealed:
 * AES-256-GCM under a key the platform derives for this enclave program alone
 * (SEV-SNP MSG_KEY_REQ, SGX EGETKEY, or the virtual platform's derivation), so
 * the host can store the blob but neither read the key nor forge the state.
 *
 * The host could still replay an older blob (rollback); real deployments pair
 * this with a monotonic counter. See node/enclave/providers/README.md.
 */

/** Proposal, prevote, precommit: the order in which a validator signs within a round. */
export const SIGN_STEP = { proposal: 1, prevote: 2, precommit: 3 } as const;
export type SignStep = keyof typeof SIGN_STEP;

export interface LastSign {
  height: number;
  round: number;
  step: number;
  /** What was signed at that slot: a block hash, or "nil". */
  value: string;
}

interface SealedPlaintext {
  v: 1;
  privateKey: string;
  lastSign: LastSign | null;
}

const AAD = Buffer.from('cloister/sealed-identity/v1');

export class SealedIdentity {
  readonly signer: Ed25519Signer;
  #privateKey: string;
  #lastSign: LastSign | null;
  readonly #sealingKey: Uint8Array;

  private constructor(privateKey: string, lastSign: LastSign | null, sealingKey: Uint8Array) {
    this.#privateKey = privateKey;
    this.signer = new Ed25519Signer(privateKey);
    this.#lastSign = lastSign;
    this.#sealingKey = sealingKey;
  }

  /** A new identity (no sealed blob yet), or the one in `sealed`; throws SEAL_INVALID if it does not open. */
  static open(sealed: string | null, sealingKey: Uint8Array): SealedIdentity {
    if (sealingKey.length !== 32) throw new ChainError('ENCLAVE_UNAVAILABLE', 'the platform sealing key must be 32 bytes');
    if (sealed === null) return new SealedIdentity(generateEd25519KeyPair().privateKey, null, sealingKey);
    const plain = unseal(sealed, sealingKey);
    return new SealedIdentity(plain.privateKey, plain.lastSign, sealingKey);
  }

  get lastSign(): LastSign | null {
    return this.#lastSign ? { ...this.#lastSign } : null;
  }

  /**
   * Records a signature at (height, round, step) before it is made. Signing
   * again exactly what was signed last is allowed (ed25519 is deterministic:
   * same signature); anything at or below the last slot otherwise is refused,
   * so no host, restart or replayed request can make this enclave equivocate.
   */
  claim(height: number, round: number, step: SignStep, value: string): void {
    const next: LastSign = { height, round, step: SIGN_STEP[step], value };
    const last = this.#lastSign;
    if (last) {
      const order = compareSlots(next, last);
      if (order === 0 && last.value === value) return;
      if (order <= 0) {
        throw new ChainError(
          'VOTE_CONFLICT',
          `already signed ${describe(last)}; refusing ${step} for ${value === 'nil' ? 'nil' : value.slice(0, 16)} at height ${height} round ${round}`,
        );
      }
    }
    this.#lastSign = next;
  }

  /** The identity sealed for the host to store (a fresh IV each time). */
  seal(): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#sealingKey, iv);
    cipher.setAAD(AAD);
    const plain: SealedPlaintext = { v: 1, privateKey: this.#privateKey, lastSign: this.#lastSign };
    const ct = Buffer.concat([cipher.update(JSON.stringify(plain), 'utf8'), cipher.final()]);
    return JSON.stringify({ v: 1, iv: iv.toString('base64'), ct: ct.toString('base64'), tag: cipher.getAuthTag().toString('base64') });
  }
}

function compareSlots(a: LastSign, b: LastSign): number {
  if (a.height !== b.height) return a.height < b.height ? -1 : 1;
  if (a.round !== b.round) return a.round < b.round ? -1 : 1;
  if (a.step !== b.step) return a.step < b.step ? -1 : 1;
  return 0;
}

function describe(s: LastSign): string {
  const step = Object.entries(SIGN_STEP).find(([, n]) => n === s.step)?.[0] ?? String(s.step);
  return `a ${step} at height ${s.height} round ${s.round}`;
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
  const plain = JSON.parse(text) as SealedPlaintext;
  if (plain.v !== 1 || !isHexOfLength(plain.privateKey, 32)) return bad('unknown content');
  return plain;
}
