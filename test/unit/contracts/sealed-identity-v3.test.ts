/**
 * The sealed enclave identity, version 3 (contracts/enclave/sealed-identity.ts):
 * the encryption key and the consortium secrets it carries, and the migration of
 * blobs sealed by the older versions. Old blobs are built here by hand, exactly
 * as the older code sealed them, with real AES-256-GCM.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../helpers/chain-error.js';
import {
  generateEd25519KeyPair,
  hpkeOpen,
  hpkePublicKeyOf,
  hpkeSeal,
  toHex,
  type LastSign,
  type SignerLock,
} from '../../../consensus/index.js';
import { SealedIdentity } from '../../../contracts/index.js';

const key = new Uint8Array(randomBytes(32));
const AAD = 'cloister/sealed-identity/v1';

/** Seals a plaintext object the way every version of the identity did: AES-256-GCM, random IV, the fixed AAD. */
function sealByHand(plain: unknown, sealingKey: Uint8Array = key, aad: string = AAD): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealingKey, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([cipher.update(JSON.stringify(plain), 'utf8'), cipher.final()]);
  return JSON.stringify({ v: 1, iv: iv.toString('base64'), ct: ct.toString('base64'), tag: cipher.getAuthTag().toString('base64') });
}


const lastSign: LastSign = { height: 12, round: 1, step: 2, value: 'cd'.repeat(32) };
const lock: SignerLock = { height: 11, round: 0, blockHash: 'ef'.repeat(32) };

/** A well-formed version-3 plaintext, for hand-made blobs. */
function v3Plain(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    v: 3,
    seq: 4,
    privateKey: generateEd25519KeyPair().privateKey,
    encryptionKey: toHex(new Uint8Array(randomBytes(32))),
    secrets: { '1': 'ab'.repeat(32) },
    lastSign: null,
    lock: null,
    ...over,
  };
}

describe('the sealed identity, version 3', () => {
  it('makes a new identity with an encryption key and no secrets', () => {
    const id = SealedIdentity.open([], key);
    expect(id.from).toBeNull();
    expect(id.encryptionPublicKey).toMatch(/^[0-9a-f]{64}$/);
    expect(id.secrets).toEqual([]);
    const pair = id.encryptionKeyPair;
    expect(pair.privateKey).toHaveLength(32);
    expect(toHex(pair.publicKey)).toBe(id.encryptionPublicKey);
    expect(toHex(hpkePublicKeyOf(pair.privateKey))).toBe(id.encryptionPublicKey);
    // Each new identity has its own keys.
    const other = SealedIdentity.open([], key);
    expect(other.encryptionPublicKey).not.toBe(id.encryptionPublicKey);
    expect(other.signer.publicKey).not.toBe(id.signer.publicKey);
  });

  it('reopens with the same vote key, encryption key and secrets', () => {
    const id = SealedIdentity.open([], key);
    const secret = new Uint8Array(randomBytes(32));
    id.keepSecret(1, secret);
    expect(id.secrets.map((s) => [s.generation, toHex(s.secret)])).toEqual([[1, toHex(secret)]]);
    const blob = id.seal();
    // Nothing of the keys or the secret in the clear.
    expect(blob).not.toContain(toHex(secret));
    expect(blob).not.toContain(toHex(id.encryptionKeyPair.privateKey));
    expect(blob).not.toMatch(/secrets|encryptionKey/);

    const reopened = SealedIdentity.open([blob], key);
    expect(reopened.from).toBe(0);
    expect(reopened.signer.publicKey).toBe(id.signer.publicKey);
    expect(reopened.encryptionPublicKey).toBe(id.encryptionPublicKey);
    expect(toHex(reopened.encryptionKeyPair.privateKey)).toBe(toHex(id.encryptionKeyPair.privateKey));
    expect(reopened.secrets).toHaveLength(1);
    expect(reopened.secrets[0]!.generation).toBe(1);
    expect(toHex(reopened.secrets[0]!.secret)).toBe(toHex(secret));
  });

  it('keeps an encryption key that still opens what peers sealed to the public key before the restart', () => {
    const id = SealedIdentity.open([], key);
    const info = new TextEncoder().encode('test/release');
    const aad = new TextEncoder().encode('aad');
    const { enc, ciphertext } = hpkeSeal(id.encryptionKeyPair.publicKey, info, aad, new TextEncoder().encode('the secret'));
    const reopened = SealedIdentity.open([id.seal()], key);
    expect(new TextDecoder().decode(hpkeOpen(reopened.encryptionKeyPair, enc, info, aad, ciphertext))).toBe('the secret');
    // Another identity's key does not open it.
    expect(codeOf(() => hpkeOpen(SealedIdentity.open([], key).encryptionKeyPair, enc, info, aad, ciphertext))).toBe('DECRYPT_FAILED');
  });

  it('forgets a dropped secret across a reseal', () => {
    const id = SealedIdentity.open([], key);
    id.keepSecret(1, new Uint8Array(randomBytes(32)));
    const withSecret = SealedIdentity.open([id.seal()], key);
    expect(withSecret.secrets).toHaveLength(1);
    withSecret.dropSecret(1);
    expect(withSecret.secrets).toEqual([]);
    const reopened = SealedIdentity.open([withSecret.seal()], key);
    expect(reopened.secrets).toEqual([]);
    expect(reopened.signer.publicKey).toBe(id.signer.publicKey);
    expect(reopened.encryptionPublicKey).toBe(id.encryptionPublicKey);
  });

  it('lists several generations oldest first, replaces one kept again, and keeps its own copy', () => {
    const id = SealedIdentity.open([], key);
    const s3 = new Uint8Array(randomBytes(32));
    const s1 = new Uint8Array(randomBytes(32));
    id.keepSecret(3, s3);
    id.keepSecret(1, s1);
    const copy = Uint8Array.from(s1);
    s1.fill(0); // the caller's buffer is wiped; the identity's copy is not
    expect(id.secrets.map((s) => s.generation)).toEqual([1, 3]);
    expect(toHex(id.secrets[0]!.secret)).toBe(toHex(copy));
    const replacement = new Uint8Array(randomBytes(32));
    id.keepSecret(3, replacement);
    const reopened = SealedIdentity.open([id.seal()], key);
    expect(reopened.secrets.map((s) => [s.generation, toHex(s.secret)])).toEqual([
      [1, toHex(copy)],
      [3, toHex(replacement)],
    ]);
  });

  it('moves the sequence number with every secret kept or dropped, so the newer blob wins in either slot', () => {
    const id = SealedIdentity.open([], key);
    const before = id.seal();
    id.keepSecret(1, new Uint8Array(randomBytes(32)));
    const kept = id.seal();
    expect(SealedIdentity.open([before, kept], key).secrets).toHaveLength(1);
    expect(SealedIdentity.open([kept, before], key).secrets).toHaveLength(1);
    expect(SealedIdentity.open([before, kept], key).from).toBe(1);
    id.dropSecret(1);
    const dropped = id.seal();
    expect(SealedIdentity.open([kept, dropped], key).secrets).toEqual([]);
    expect(SealedIdentity.open([dropped, kept], key).secrets).toEqual([]);
    expect(SealedIdentity.open([dropped, kept], key).from).toBe(0);
  });

  it('does not move the sequence number when dropping a secret it does not hold', () => {
    const id = SealedIdentity.open([], key);
    id.keepSecret(1, new Uint8Array(randomBytes(32)));
    const a = id.seal();
    id.dropSecret(2);
    const b = id.seal();
    // Same sequence number: the first blob handed over is taken.
    expect(SealedIdentity.open([a, b], key).from).toBe(0);
    expect(SealedIdentity.open([b, a], key).from).toBe(0);
  });
});

describe('migration of older sealed identities', () => {
  it('opens a version-2 blob with the same vote key, safety state and sequence, a fresh encryption key and no secrets', () => {
    const pair = generateEd25519KeyPair();
    const v2 = sealByHand({ v: 2, seq: 5, privateKey: pair.privateKey, lastSign: null, lock: null });
    const id = SealedIdentity.open([v2], key);
    expect(id.from).toBe(0);
    expect(id.signer.publicKey).toBe(pair.publicKey);
    expect(id.lastSign).toBeNull();
    expect(id.lock).toBeNull();
    expect(id.encryptionPublicKey).toMatch(/^[0-9a-f]{64}$/);
    expect(toHex(hpkePublicKeyOf(id.encryptionKeyPair.privateKey))).toBe(id.encryptionPublicKey);
    expect(id.secrets).toEqual([]);
  });

  it('keeps the last signature and lock of a version-2 blob', () => {
    const pair = generateEd25519KeyPair();
    const id = SealedIdentity.open([sealByHand({ v: 2, seq: 5, privateKey: pair.privateKey, lastSign, lock })], key);
    expect(id.signer.publicKey).toBe(pair.publicKey);
    expect(id.lastSign).toEqual(lastSign);
    expect(id.lock).toEqual(lock);
  });

  it('keeps the version-2 sequence number: an older version-3 blob of the same identity loses to it', () => {
    const pair = generateEd25519KeyPair();
    const v2 = sealByHand({ v: 2, seq: 5, privateKey: pair.privateKey, lastSign, lock: null });
    const olderV3 = sealByHand(v3Plain({ seq: 4, privateKey: pair.privateKey }));
    expect(SealedIdentity.open([olderV3, v2], key).from).toBe(1);
    expect(SealedIdentity.open([olderV3, v2], key).secrets).toEqual([]);
    const newerV3 = sealByHand(v3Plain({ seq: 6, privateKey: pair.privateKey }));
    expect(SealedIdentity.open([v2, newerV3], key).from).toBe(1);
    expect(SealedIdentity.open([v2, newerV3], key).secrets.map((s) => s.generation)).toEqual([1]);
  });

  it('reseals a migrated identity as version 3 that keeps the new encryption key from then on', () => {
    const pair = generateEd25519KeyPair();
    const v2 = sealByHand({ v: 2, seq: 5, privateKey: pair.privateKey, lastSign, lock });
    const migrated = SealedIdentity.open([v2], key);
    const secret = new Uint8Array(randomBytes(32));
    migrated.keepSecret(1, secret);
    const v3 = migrated.seal();
    // The resealed blob is newer than the version-2 one, whichever slot it is in.
    for (const blobs of [
      [v2, v3],
      [v3, v2],
    ]) {
      const reopened = SealedIdentity.open(blobs, key);
      expect(reopened.signer.publicKey).toBe(pair.publicKey);
      expect(reopened.encryptionPublicKey).toBe(migrated.encryptionPublicKey);
      expect(reopened.lastSign).toEqual(lastSign);
      expect(reopened.lock).toEqual(lock);
      expect(reopened.secrets.map((s) => toHex(s.secret))).toEqual([toHex(secret)]);
    }
    // Opening the version-2 blob alone again makes yet another encryption key (nothing was sealed to it).
    expect(SealedIdentity.open([v2], key).encryptionPublicKey).not.toBe(migrated.encryptionPublicKey);
  });

  it('opens a version-1 blob (no sequence number, no lock) with the same vote key and last signature', () => {
    const pair = generateEd25519KeyPair();
    const id = SealedIdentity.open([sealByHand({ v: 1, privateKey: pair.privateKey, lastSign })], key);
    expect(id.signer.publicKey).toBe(pair.publicKey);
    expect(id.lastSign).toEqual(lastSign);
    expect(id.lock).toBeNull();
    expect(id.encryptionPublicKey).toMatch(/^[0-9a-f]{64}$/);
    expect(id.secrets).toEqual([]);
    // Read as sequence 0: any version-2 seal of the same identity is newer.
    const v2 = sealByHand({ v: 2, seq: 1, privateKey: pair.privateKey, lastSign: null, lock: null });
    expect(SealedIdentity.open([sealByHand({ v: 1, privateKey: pair.privateKey, lastSign }), v2], key).from).toBe(1);
    // And one without a last signature.
    expect(SealedIdentity.open([sealByHand({ v: 1, privateKey: pair.privateKey, lastSign: null })], key).lastSign).toBeNull();
  });

  it('opens a hand-made version-3 blob exactly as written', () => {
    const pair = generateEd25519KeyPair();
    const encryptionKey = new Uint8Array(randomBytes(32));
    const id = SealedIdentity.open(
      [sealByHand(v3Plain({ privateKey: pair.privateKey, encryptionKey: toHex(encryptionKey), secrets: { '2': 'cd'.repeat(32), '1': 'ab'.repeat(32) }, lastSign, lock }))],
      key,
    );
    expect(id.signer.publicKey).toBe(pair.publicKey);
    expect(id.encryptionPublicKey).toBe(toHex(hpkePublicKeyOf(encryptionKey)));
    expect(id.secrets.map((s) => [s.generation, toHex(s.secret)])).toEqual([
      [1, 'ab'.repeat(32)],
      [2, 'cd'.repeat(32)],
    ]);
    expect(id.lastSign).toEqual(lastSign);
    expect(id.lock).toEqual(lock);
  });
});

describe('sealed identities that do not open', () => {
  it('refuses a blob sealed with another sealing key', () => {
    const blob = SealedIdentity.open([], key).seal();
    expect(codeOf(() => SealedIdentity.open([blob], new Uint8Array(randomBytes(32))))).toBe('SEAL_INVALID');
    const v2 = sealByHand({ v: 2, seq: 5, privateKey: generateEd25519KeyPair().privateKey, lastSign: null, lock: null }, new Uint8Array(randomBytes(32)));
    expect(codeOf(() => SealedIdentity.open([v2], key))).toBe('SEAL_INVALID');
  });

  it('refuses a blob sealed under another AAD', () => {
    const blob = sealByHand(v3Plain(), key, 'cloister/sealed-identity/v3');
    expect(codeOf(() => SealedIdentity.open([blob], key))).toBe('SEAL_INVALID');
  });

  it('refuses a version-3 blob with a malformed secret or encryption key', () => {
    // The control: the same plaintext, well-formed, opens.
    expect(SealedIdentity.open([sealByHand(v3Plain())], key).secrets).toHaveLength(1);
    const bad: Record<string, unknown>[] = [
      { secrets: { '1': 'zz' } },
      { secrets: { '1': 'ab'.repeat(31) } },
      { secrets: { '1': 'AB'.repeat(32) } },
      { secrets: { '1': 7 } },
      { secrets: { '0': 'ab'.repeat(32) } },
      { secrets: { '01': 'ab'.repeat(32) } },
      { secrets: { '-1': 'ab'.repeat(32) } },
      { secrets: { x: 'ab'.repeat(32) } },
      { secrets: ['ab'.repeat(32)] },
      { secrets: null },
      { secrets: undefined },
      { encryptionKey: 'zz' },
      { encryptionKey: 'ab'.repeat(31) },
      { encryptionKey: undefined },
      { seq: 1.5 },
      { seq: undefined },
      { lastSign: { height: 1, round: 0, step: 4, value: 'x' } },
      { lock: { height: 1, round: 0, blockHash: 'x' } },
      { privateKey: 'zz' },
      { v: 4 },
    ];
    for (const over of bad) {
      expect(codeOf(() => SealedIdentity.open([sealByHand(v3Plain(over))], key)), JSON.stringify(over)).toBe('SEAL_INVALID');
    }
  });

  it('skips a malformed blob beside a good one, and refuses when none opens', () => {
    const id = SealedIdentity.open([], key);
    const good = id.seal();
    const malformed = sealByHand(v3Plain({ secrets: { '1': 'zz' } }));
    expect(SealedIdentity.open([malformed, good], key).signer.publicKey).toBe(id.signer.publicKey);
    expect(SealedIdentity.open([malformed, good], key).from).toBe(1);
    expect(codeOf(() => SealedIdentity.open([malformed, malformed], key))).toBe('SEAL_INVALID');
  });

  it('refuses a version-2 blob and a version-3 blob of two different identities', () => {
    const v2 = sealByHand({ v: 2, seq: 5, privateKey: generateEd25519KeyPair().privateKey, lastSign: null, lock: null });
    const v3 = SealedIdentity.open([], key).seal();
    expect(codeOf(() => SealedIdentity.open([v2, v3], key))).toBe('SEAL_INVALID');
  });
});

describe('what a sealed identity keeps', () => {
  it('refuses a secret it could not open again (generation out of range, not 32 bytes), changing nothing', () => {
    const identity = SealedIdentity.open([], key);
    for (const [generation, size] of [[0, 32], [1e10, 32], [1.5, 32], [1, 16]] as const) {
      expect(codeOf(() => identity.keepSecret(generation, new Uint8Array(size))), `${generation}/${size}`).toBe('ECALL_INVALID');
    }
    expect(SealedIdentity.open([identity.seal()], key).secrets).toEqual([]);
  });
});
