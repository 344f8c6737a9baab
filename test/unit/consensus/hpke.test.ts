/**
 * HPKE (consensus/crypto/hpke.ts) against RFC 9180's published vectors and
 * against `@hpke/core`, the reference implementation, in both directions.
 */
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../helpers/chain-error.js';
import {
  ChainError,
  deriveHpkeKeyPair,
  generateHpkeKeyPair,
  hpkeOpen,
  hpkePublicKeyOf,
  hpkeSeal,
  setupHpkeRecipient,
  setupHpkeSender,
} from '../../../consensus/index.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));

/** RFC 9180, appendix A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode. */
const A1 = {
  info: '4f6465206f6e2061204772656369616e2055726e',
  ikmE: '7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234',
  skEm: '52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736',
  pkEm: '37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431',
  ikmR: '6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037',
  skRm: '4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8',
  pkRm: '3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d',
  pt: '4265617574792069732074727574682c20747275746820626561757479',
  // Sequence number: AAD and ciphertext (A.1.1.1).
  encryptions: new Map<number, { aad: string; ct: string }>([
    [0, { aad: '436f756e742d30', ct: 'f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a' }],
    [1, { aad: '436f756e742d31', ct: 'af2d7e9ac9ae7e270f46ba1f975be53c09f8d875bdc8535458c2494e8a6eab251c03d0c22a56b8ca42c2063b84' }],
    [2, { aad: '436f756e742d32', ct: '498dfcabd92e8acedc281e85af1cb4e3e31c7dc394a1ca20e173cb72516491588d96a19ad4a683518973dcc180' }],
    [4, { aad: '436f756e742d34', ct: '583bd32bc67a5994bb8ceaca813d369bca7b2a42408cddef5e22f880b631215a09fc0012bc69fccaa251c0246d' }],
    [255, { aad: '436f756e742d323535', ct: '7175db9717964058640a3a11fb9007941a5d1757fda1a6935c805c21af32505bf106deefec4a49ac38d71c9e0a' }],
    [256, { aad: '436f756e742d323536', ct: '957f9800542b0b8891badb026d79cc54597cb2d225b54c00c5238c25d05c30e3fbeda97d2e0e1aba483a2df9f2' }],
  ]),
  // Exporter context: exported value, 32 bytes (A.1.1.2).
  exports: [
    ['', '3853fe2b4035195a573ffc53856e77058e15d9ea064de3e59f4961d0095250ee'],
    ['00', '2e8f0b54673c7029649d4eb9d5e33bf1872cf76d623ff164ac185da9e88c21a5'],
    ['54657374436f6e74657874', 'e9e43065102c3836401bed8c3c3c75ae46be1639869391d62c61f1ec7af54931'],
  ] as const,
};

const recipientA1 = { privateKey: bytes(A1.skRm), publicKey: bytes(A1.pkRm) };
const ephemeralA1 = { privateKey: bytes(A1.skEm), publicKey: bytes(A1.pkEm) };

describe('HPKE against RFC 9180 appendix A.1', () => {
  it('derives both published key pairs', () => {
    expect(deriveHpkeKeyPair(bytes(A1.ikmE))).toEqual(ephemeralA1);
    expect(deriveHpkeKeyPair(bytes(A1.ikmR))).toEqual(recipientA1);
    expect(hex(hpkePublicKeyOf(bytes(A1.skRm)))).toBe(A1.pkRm);
  });

  it('seals every published message in order (nonce carry past 255 included) and opens them', () => {
    const sender = setupHpkeSender(bytes(A1.pkRm), bytes(A1.info), { aead: 'aes-128-gcm', ephemeral: ephemeralA1 });
    const recipient = setupHpkeRecipient(sender.enc, recipientA1, bytes(A1.info), { aead: 'aes-128-gcm' });
    expect(hex(sender.enc)).toBe(A1.pkEm);
    for (let seq = 0; seq <= 256; seq++) {
      const published = A1.encryptions.get(seq);
      const aad = bytes(published?.aad ?? Buffer.from(`Count-${seq}`).toString('hex'));
      const ct = sender.seal(aad, bytes(A1.pt));
      if (published) expect(hex(ct), `sequence ${seq}`).toBe(published.ct);
      expect(hex(recipient.open(aad, ct))).toBe(A1.pt);
    }
  });

  it('opens the published messages by their sequence numbers, in any order, without moving its own sequence', () => {
    const recipient = setupHpkeRecipient(bytes(A1.pkEm), recipientA1, bytes(A1.info), { aead: 'aes-128-gcm' });
    const published = [...A1.encryptions.entries()].reverse();
    for (const [seq, { aad, ct }] of published) expect(hex(recipient.openAt(seq, bytes(aad), bytes(ct))), `sequence ${seq}`).toBe(A1.pt);
    // A message opened under another sequence number does not authenticate.
    const [seq, { aad, ct }] = published[0]!;
    expect(codeOf(() => recipient.openAt(seq + 1, bytes(aad), bytes(ct)))).toBe('DECRYPT_FAILED');
    expect(codeOf(() => recipient.openAt(-1, bytes(aad), bytes(ct)))).toBe('HPKE_INVALID');
    expect(codeOf(() => recipient.openAt(1.5, bytes(aad), bytes(ct)))).toBe('HPKE_INVALID');
    // Its in-order sequence is untouched: message 0 still opens with open().
    const first = A1.encryptions.get(0)!;
    expect(recipient.seq).toBe(0);
    expect(hex(recipient.open(bytes(first.aad), bytes(first.ct)))).toBe(A1.pt);
    expect(recipient.seq).toBe(1);
  });

  it('exports the published secrets on both sides', () => {
    const sender = setupHpkeSender(bytes(A1.pkRm), bytes(A1.info), { aead: 'aes-128-gcm', ephemeral: ephemeralA1 });
    const recipient = setupHpkeRecipient(bytes(A1.pkEm), recipientA1, bytes(A1.info), { aead: 'aes-128-gcm' });
    for (const [context, value] of A1.exports) {
      expect(hex(sender.export(bytes(context), 32))).toBe(value);
      expect(hex(recipient.export(bytes(context), 32))).toBe(value);
    }
  });
});

describe('HPKE against @hpke/core (X25519, HKDF-SHA256, AES-256-GCM)', () => {
  const reference = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
  const info = new TextEncoder().encode('cloister test');
  const aad = new TextEncoder().encode('chain|sender|nonce|contract');
  const plaintext = new TextEncoder().encode(JSON.stringify({ method: 'submit', args: ['lengthofstay', 7777001] }));

  it('opens what @hpke/core sealed', async () => {
    const recipient = generateHpkeKeyPair();
    const publicKey = await reference.kem.importKey('raw', recipient.publicKey.slice().buffer, true);
    const sealed = await reference.seal({ recipientPublicKey: publicKey, info }, plaintext.slice().buffer, aad.slice().buffer);
    const opened = hpkeOpen(recipient, new Uint8Array(sealed.enc), info, aad, new Uint8Array(sealed.ct));
    expect(opened).toEqual(plaintext);
  });

  it('@hpke/core opens what this module sealed, and both export the same secret', async () => {
    const ikm = new Uint8Array(32).fill(7);
    const recipient = deriveHpkeKeyPair(ikm);
    const referencePair = await reference.kem.deriveKeyPair(ikm.slice().buffer);
    const sender = setupHpkeSender(recipient.publicKey, info);
    const ct = sender.seal(aad, plaintext);
    const context = await reference.createRecipientContext({ recipientKey: referencePair, enc: sender.enc.slice().buffer, info });
    expect(new Uint8Array(await context.open(ct.slice().buffer, aad.slice().buffer))).toEqual(plaintext);
    const exporterContext = new TextEncoder().encode('result key');
    expect(new Uint8Array(await context.export(exporterContext.slice().buffer, 32))).toEqual(sender.export(exporterContext, 32));
  });
});

describe('HPKE refusals', () => {
  const info = new Uint8Array([1]);
  const aad = new Uint8Array([2]);
  const recipient = generateHpkeKeyPair();
  const sealed = hpkeSeal(recipient.publicKey, info, aad, new Uint8Array([3, 4, 5]));
  const codeOf = (f: () => unknown): string | undefined => {
    try {
      f();
      return undefined;
    } catch (err) {
      return err instanceof ChainError ? err.code : 'not a ChainError';
    }
  };

  it('a ciphertext opens only with its key, its info, its AAD, unaltered', () => {
    expect(hpkeOpen(recipient, sealed.enc, info, aad, sealed.ciphertext)).toEqual(new Uint8Array([3, 4, 5]));
    expect(codeOf(() => hpkeOpen(generateHpkeKeyPair(), sealed.enc, info, aad, sealed.ciphertext))).toBe('DECRYPT_FAILED');
    expect(codeOf(() => hpkeOpen(recipient, sealed.enc, new Uint8Array([9]), aad, sealed.ciphertext))).toBe('DECRYPT_FAILED');
    expect(codeOf(() => hpkeOpen(recipient, sealed.enc, info, new Uint8Array([9]), sealed.ciphertext))).toBe('DECRYPT_FAILED');
    const flipped = sealed.ciphertext.slice();
    flipped[0]! ^= 1;
    expect(codeOf(() => hpkeOpen(recipient, sealed.enc, info, aad, flipped))).toBe('DECRYPT_FAILED');
    expect(codeOf(() => hpkeOpen(recipient, sealed.enc, info, aad, sealed.ciphertext.subarray(0, 15)))).toBe('DECRYPT_FAILED');
  });

  it('refuses keys of the wrong length and small-order points (an all-zero shared secret)', () => {
    expect(codeOf(() => hpkeSeal(new Uint8Array(31), info, aad, new Uint8Array(1)))).toBe('HPKE_INVALID');
    expect(codeOf(() => hpkeOpen(recipient, new Uint8Array(33), info, aad, sealed.ciphertext))).toBe('HPKE_INVALID');
    // u = 0 and u = 1 are points of small order: X25519 with them gives zero.
    for (const u of [new Uint8Array(32), Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0))]) {
      expect(codeOf(() => hpkeSeal(u, info, aad, new Uint8Array(1)))).toBe('HPKE_INVALID');
      expect(codeOf(() => hpkeOpen(recipient, u, info, aad, sealed.ciphertext))).toBe('HPKE_INVALID');
    }
    expect(codeOf(() => deriveHpkeKeyPair(new Uint8Array(16)))).toBe('INVALID_ARGS');
  });
});
