/**
 * Confidential transactions and calls (consensus/chain/confidential.ts) and the
 * sealed transaction shape (consensus/chain/transaction.ts): real HPKE and
 * AES-GCM throughout, nothing mocked.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../helpers/chain-error.js';
import {
  CONFIDENTIAL_CALL_INFO,
  CONFIDENTIAL_TX_INFO,
  ChainError,
  Ed25519Signer,
  canonicalize,
  checkTxStateless,
  generateEd25519KeyPair,
  isSealedTx,
  networkKeyPair,
  OpeningSessions,
  SealingSession,
  fromHex,
  openCallPayload,
  openCallResult,
  openResult,
  openTxPayload,
  parseSignedTx,
  sealCallPayload,
  sealCallResult,
  sealResult,
  sealTxPayload,
  setupHpkeRecipient,
  setupHpkeSender,
  signTx,
  toHex,
  txBodyOf,
  txHash,
  type JsonValue,
  type SealedPayload,
  type SealedTxBinding,
  type SignedTx,
} from '../../../consensus/index.js';

const secret = (): Uint8Array => new Uint8Array(randomBytes(32));
const SECRET = secret();
const NETWORK = networkKeyPair(SECRET);
const signer = new Ed25519Signer(generateEd25519KeyPair().privateKey);
const other = new Ed25519Signer(generateEd25519KeyPair().privateKey);

const binding: SealedTxBinding = { chainId: 'test-chain', from: signer.publicKey, nonce: 7, contract: 'analytics', generation: 1 };
const txPlace = { chainId: binding.chainId, from: binding.from, nonce: binding.nonce, contract: binding.contract };
const callBinding = { chainId: 'test-chain', contract: 'analytics', generation: 1 };
const callPlace = { chainId: callBinding.chainId, contract: callBinding.contract };


/** A result key's exporter context as documented: the label, then the request's sequence number as 8 big-endian bytes. */
function resultLabel(label: string, seq: number): Uint8Array {
  const out = Buffer.alloc(Buffer.byteLength(label) + 8);
  out.write(label);
  out.writeBigUInt64BE(BigInt(seq), Buffer.byteLength(label));
  return new Uint8Array(out);
}

function errorOf(fn: () => unknown): ChainError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ChainError);
    return err as ChainError;
  }
  throw new Error('expected a ChainError');
}

/** The AAD a sealed transaction is bound to, written out from the documented format (not taken from the module). */
function txAad(b: SealedTxBinding): Uint8Array {
  const payload = { chainId: b.chainId, contract: b.contract, from: b.from, generation: b.generation, nonce: b.nonce };
  return new TextEncoder().encode(`cloister/tx-aad/v1\n${canonicalize(payload)}`);
}

function callAad(b: { chainId: string; contract: string; generation: number }): Uint8Array {
  return new TextEncoder().encode(`cloister/call-aad/v1\n${canonicalize({ chainId: b.chainId, contract: b.contract, generation: b.generation })}`);
}

/** Seals arbitrary plaintext bytes exactly as a client would, bypassing sealTxPayload's encoding. */
function sealRawTx(b: SealedTxBinding, plaintext: string): SealedPayload {
  const sender = setupHpkeSender(NETWORK.publicKey, CONFIDENTIAL_TX_INFO);
  const ct = sender.seal(txAad(b), new TextEncoder().encode(plaintext));
  return { generation: b.generation, enc: toHex(sender.enc), ct: Buffer.from(ct).toString('base64') };
}

function sealRawCall(b: { chainId: string; contract: string; generation: number }, plaintext: Uint8Array): SealedPayload {
  const sender = setupHpkeSender(NETWORK.publicKey, CONFIDENTIAL_CALL_INFO);
  const ct = sender.seal(callAad(b), plaintext);
  return { generation: b.generation, enc: toHex(sender.enc), ct: Buffer.from(ct).toString('base64') };
}

function flipCtByte(sealed: SealedPayload, index: number): SealedPayload {
  const bytes = Buffer.from(sealed.ct, 'base64');
  bytes[index]! ^= 0x01;
  return { ...sealed, ct: bytes.toString('base64') };
}

describe('the network key', () => {
  it('is derived deterministically from a 32-byte consortium secret, and differs between secrets', () => {
    const again = networkKeyPair(Uint8Array.from(SECRET));
    expect(toHex(again.publicKey)).toBe(toHex(NETWORK.publicKey));
    expect(toHex(again.privateKey)).toBe(toHex(NETWORK.privateKey));
    expect(NETWORK.publicKey).toHaveLength(32);
    expect(toHex(networkKeyPair(secret()).publicKey)).not.toBe(toHex(NETWORK.publicKey));
  });

  it('refuses a secret that is not 32 bytes', () => {
    expect(codeOf(() => networkKeyPair(new Uint8Array(31)))).toBe('INVALID_ARGS');
    expect(codeOf(() => networkKeyPair(new Uint8Array(33)))).toBe('INVALID_ARGS');
  });
});

describe('sealed transactions', () => {
  const call = { method: 'record', args: ['oncology', 3, { nested: [true, null] }] as JsonValue[] };

  it('open to the method and arguments sealed, and both sides derive the same result key', () => {
    const { sealed, resultKey } = sealTxPayload(NETWORK.publicKey, binding, call);
    expect(sealed.generation).toBe(1);
    expect(sealed.enc).toMatch(/^[0-9a-f]{64}$/);
    expect(sealed.ct).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    // The ciphertext shows none of the plaintext.
    expect(Buffer.from(sealed.ct, 'base64').toString('latin1')).not.toContain('record');
    expect(Buffer.from(sealed.ct, 'base64').toString('latin1')).not.toContain('oncology');
    const opened = openTxPayload(NETWORK, txPlace, sealed);
    expect(opened.method).toBe('record');
    expect(opened.args).toEqual(call.args);
    expect(resultKey).toHaveLength(32);
    expect(toHex(opened.resultKey)).toBe(toHex(resultKey));
  });

  it('are fresh every time: the same request seals to a different enc, ciphertext and result key', () => {
    const a = sealTxPayload(NETWORK.publicKey, binding, call);
    const b = sealTxPayload(NETWORK.publicKey, binding, call);
    expect(b.sealed.enc).not.toBe(a.sealed.enc);
    expect(b.sealed.ct).not.toBe(a.sealed.ct);
    expect(toHex(b.resultKey)).not.toBe(toHex(a.resultKey));
    expect(openTxPayload(NETWORK, txPlace, b.sealed).method).toBe('record');
  });

  it('open only for the exact chain, sender, nonce and contract they were sealed for', () => {
    const { sealed } = sealTxPayload(NETWORK.publicKey, binding, call);
    expect(codeOf(() => openTxPayload(NETWORK, { ...txPlace, chainId: 'other-chain' }, sealed))).toBe('DECRYPT_FAILED');
    expect(codeOf(() => openTxPayload(NETWORK, { ...txPlace, from: other.publicKey }, sealed))).toBe('DECRYPT_FAILED');
    expect(codeOf(() => openTxPayload(NETWORK, { ...txPlace, nonce: 8 }, sealed))).toBe('DECRYPT_FAILED');
    expect(codeOf(() => openTxPayload(NETWORK, { ...txPlace, nonce: 6 }, sealed))).toBe('DECRYPT_FAILED');
    expect(codeOf(() => openTxPayload(NETWORK, { ...txPlace, contract: 'analytics2' }, sealed))).toBe('DECRYPT_FAILED');
    // The original binding still opens it (the failures above are the binding, not a broken ciphertext).
    expect(openTxPayload(NETWORK, txPlace, sealed).method).toBe('record');
  });

  it('open only under the generation they were sealed to', () => {
    const { sealed } = sealTxPayload(NETWORK.publicKey, binding, call);
    expect(codeOf(() => openTxPayload(NETWORK, txPlace, { ...sealed, generation: 2 }))).toBe('DECRYPT_FAILED');
    const atTwo = sealTxPayload(NETWORK.publicKey, { ...binding, generation: 2 }, call);
    expect(atTwo.sealed.generation).toBe(2);
    expect(openTxPayload(NETWORK, txPlace, atTwo.sealed).method).toBe('record');
    expect(codeOf(() => openTxPayload(NETWORK, txPlace, { ...atTwo.sealed, generation: 1 }))).toBe('DECRYPT_FAILED');
  });

  it('do not open when any byte of the ciphertext or its tag is changed', () => {
    const { sealed } = sealTxPayload(NETWORK.publicKey, binding, call);
    const length = Buffer.from(sealed.ct, 'base64').length;
    for (const index of [0, Math.floor(length / 2), length - 17, length - 16, length - 1]) {
      expect(codeOf(() => openTxPayload(NETWORK, txPlace, flipCtByte(sealed, index)))).toBe('DECRYPT_FAILED');
    }
    // Truncated to less than a tag, or with the tag cut off.
    expect(codeOf(() => openTxPayload(NETWORK, txPlace, { ...sealed, ct: Buffer.alloc(15).toString('base64') }))).toBe('DECRYPT_FAILED');
    const cut = Buffer.from(sealed.ct, 'base64').subarray(0, length - 16).toString('base64');
    expect(codeOf(() => openTxPayload(NETWORK, txPlace, { ...sealed, ct: cut }))).toBe('DECRYPT_FAILED');
  });

  it('do not open under another network key, nor with another enc', () => {
    const { sealed } = sealTxPayload(NETWORK.publicKey, binding, call);
    expect(codeOf(() => openTxPayload(networkKeyPair(secret()), txPlace, sealed))).toBe('DECRYPT_FAILED');
    // A valid X25519 point, but not the one this ciphertext was encapsulated with.
    const otherEnc = sealTxPayload(NETWORK.publicKey, binding, call).sealed.enc;
    expect(codeOf(() => openTxPayload(NETWORK, txPlace, { ...sealed, enc: otherEnc }))).toBe('DECRYPT_FAILED');
  });

  it('refuse an enc that is not a 32-byte X25519 key in lowercase hex', () => {
    const { sealed } = sealTxPayload(NETWORK.publicKey, binding, call);
    const refused = ['HPKE_INVALID', 'DECRYPT_FAILED'];
    for (const enc of ['zz'.repeat(32), sealed.enc.toUpperCase(), sealed.enc.slice(0, 62), sealed.enc + '00', sealed.enc.slice(1), '', '00'.repeat(32)]) {
      expect(refused).toContain(codeOf(() => openTxPayload(NETWORK, txPlace, { ...sealed, enc })));
    }
    // Not hex at all, and the wrong length, are refused before any decryption.
    expect(codeOf(() => openTxPayload(NETWORK, txPlace, { ...sealed, enc: 'zz'.repeat(32) }))).toBe('HPKE_INVALID');
    expect(codeOf(() => openTxPayload(NETWORK, txPlace, { ...sealed, enc: sealed.enc.slice(0, 62) }))).toBe('HPKE_INVALID');
    // The all-zero point is of small order (RFC 9180, section 7.1.4).
    expect(codeOf(() => openTxPayload(NETWORK, txPlace, { ...sealed, enc: '00'.repeat(32) }))).toBe('HPKE_INVALID');
  });

  it('are sealed under the documented AAD: a raw HPKE seal of the same plaintext opens', () => {
    // Pins the wire format: a client in another language builds exactly this AAD and plaintext.
    const sealed = sealRawTx(binding, '{"args":[1,"x"],"method":"record"}');
    const opened = openTxPayload(NETWORK, txPlace, sealed);
    expect(opened).toMatchObject({ method: 'record', args: [1, 'x'] });
    // And the same plaintext under the call's info does not open as a transaction (domain separation).
    const asCall = sealRawCall({ chainId: binding.chainId, contract: binding.contract, generation: 1 }, new TextEncoder().encode('{"args":[],"method":"record"}'));
    expect(codeOf(() => openTxPayload(NETWORK, txPlace, asCall))).toBe('DECRYPT_FAILED');
  });

  it('refuse a plaintext that opens but is not a valid {method, args}, saying it is malformed', () => {
    const badMethod = sealTxPayload(NETWORK.publicKey, binding, { method: 'bad name!', args: [] });
    const err = errorOf(() => openTxPayload(NETWORK, txPlace, badMethod.sealed));
    expect(err.code).toBe('DECRYPT_FAILED');
    expect(err.message).toMatch(/malformed/);
    expect(err.message).toMatch(/method/);

    const malformed: [string, RegExp][] = [
      ['{"args":[],"method":""}', /method/],
      ['{"args":[],"method":"1st"}', /method/],
      [`{"args":[],"method":"${'m'.repeat(65)}"}`, /method/],
      ['{"args":[]}', /method/],
      ['{"args":[],"method":7}', /method/],
      ['{"method":"record"}', /args/],
      ['{"args":{},"method":"record"}', /args/],
      ['{"args":[1.5],"method":"record"}', /args/],
      ['{"args":[9007199254740993],"method":"record"}', /args/],
      ['{"args":[],"auth":null,"method":"record"}', /unknown field "auth"/],
      ['{"args":[],"method":"record","extra":1}', /unknown field "extra"/],
      ['["record",[]]', /not an object/],
      ['null', /not an object/],
      ['"record"', /not an object/],
      ['not json', /not UTF-8 JSON/],
      ['', /not UTF-8 JSON/],
    ];
    for (const [plaintext, why] of malformed) {
      const e = errorOf(() => openTxPayload(NETWORK, txPlace, sealRawTx(binding, plaintext)));
      expect(e.code, plaintext).toBe('DECRYPT_FAILED');
      expect(e.message, plaintext).toMatch(/malformed/);
      expect(e.message, plaintext).toMatch(why);
    }
    // Invalid UTF-8 is refused, not decoded with replacement characters.
    const sender = setupHpkeSender(NETWORK.publicKey, CONFIDENTIAL_TX_INFO);
    const ct = sender.seal(txAad(binding), Uint8Array.of(0x7b, 0xff, 0x7d));
    const e = errorOf(() => openTxPayload(NETWORK, txPlace, { generation: 1, enc: toHex(sender.enc), ct: Buffer.from(ct).toString('base64') }));
    expect(e.code).toBe('DECRYPT_FAILED');
    expect(e.message).toMatch(/not UTF-8 JSON/);
  });

  it('accept every method name the clear transaction format accepts', () => {
    for (const method of ['a', '_', 'A_1', 'm'.repeat(64)]) {
      const { sealed } = sealTxPayload(NETWORK.publicKey, binding, { method, args: [] });
      expect(openTxPayload(NETWORK, txPlace, sealed).method).toBe(method);
    }
  });

  it('refuse to seal arguments the canonical encoding cannot carry', () => {
    expect(codeOf(() => sealTxPayload(NETWORK.publicKey, binding, { method: 'record', args: [1.5] }))).toBe('ENCODING_INVALID');
  });
});

describe('sealed calls', () => {
  const auth: JsonValue = { from: signer.publicKey, time: 1_700_000_000, signature: 'ab'.repeat(64) };

  it('open to the method, arguments and auth sealed, with the same result key on both sides', () => {
    const { sealed, resultKey } = sealCallPayload(NETWORK.publicKey, callBinding, { method: 'total', args: ['oncology'], auth });
    const opened = openCallPayload(NETWORK, callPlace, sealed);
    expect(opened.method).toBe('total');
    expect(opened.args).toEqual(['oncology']);
    expect(opened.auth).toEqual(auth);
    expect(toHex(opened.resultKey)).toBe(toHex(resultKey));
  });

  it('carry no auth when none was sealed', () => {
    const { sealed } = sealCallPayload(NETWORK.publicKey, callBinding, { method: 'total', args: [] });
    const opened = openCallPayload(NETWORK, callPlace, sealed);
    expect(opened).not.toHaveProperty('auth');
    expect(opened.method).toBe('total');
  });

  it('open only for the chain, contract and generation they were sealed for', () => {
    const { sealed } = sealCallPayload(NETWORK.publicKey, callBinding, { method: 'total', args: [], auth });
    expect(codeOf(() => openCallPayload(NETWORK, { ...callPlace, chainId: 'other-chain' }, sealed))).toBe('DECRYPT_FAILED');
    expect(codeOf(() => openCallPayload(NETWORK, { ...callPlace, contract: 'payroll' }, sealed))).toBe('DECRYPT_FAILED');
    expect(codeOf(() => openCallPayload(NETWORK, callPlace, { ...sealed, generation: 2 }))).toBe('DECRYPT_FAILED');
    expect(codeOf(() => openCallPayload(networkKeyPair(secret()), callPlace, sealed))).toBe('DECRYPT_FAILED');
    expect(codeOf(() => openCallPayload(NETWORK, callPlace, flipCtByte(sealed, 3)))).toBe('DECRYPT_FAILED');
    expect(openCallPayload(NETWORK, callPlace, sealed).method).toBe('total');
  });

  it('and transactions do not open as each other, and their result keys differ', () => {
    const tx = sealTxPayload(NETWORK.publicKey, binding, { method: 'total', args: [] });
    const call = sealCallPayload(NETWORK.publicKey, callBinding, { method: 'total', args: [] });
    expect(codeOf(() => openCallPayload(NETWORK, callPlace, tx.sealed))).toBe('DECRYPT_FAILED');
    expect(codeOf(() => openTxPayload(NETWORK, txPlace, call.sealed))).toBe('DECRYPT_FAILED');
    // The same HPKE context exports different keys for a transaction's and a call's result.
    const sender = setupHpkeSender(NETWORK.publicKey, CONFIDENTIAL_TX_INFO);
    const txKey = sender.export(resultLabel('cloister/tx-result/v1', 0), 32);
    const callKey = sender.export(resultLabel('cloister/call-result/v1', 0), 32);
    expect(toHex(txKey)).not.toBe(toHex(callKey));
  });

  it('are sealed under the documented AAD, and a malformed plaintext is refused as malformed', () => {
    const good = sealRawCall(callBinding, new TextEncoder().encode('{"args":[],"auth":{"k":1},"method":"total"}'));
    expect(openCallPayload(NETWORK, callPlace, good)).toMatchObject({ method: 'total', args: [], auth: { k: 1 } });
    for (const plaintext of ['{"args":[],"method":"total","extra":1}', '{"args":[],"method":"no way"}', '{"args":"x","method":"total"}', '[]']) {
      const e = errorOf(() => openCallPayload(NETWORK, callPlace, sealRawCall(callBinding, new TextEncoder().encode(plaintext))));
      expect(e.code, plaintext).toBe('DECRYPT_FAILED');
      expect(e.message, plaintext).toMatch(/malformed/);
    }
  });
});

describe('sealing sessions', () => {
  const call = { method: 'record', args: ['oncology', 3] as JsonValue[] };
  const at = (nonce: number): SealedTxBinding => ({ ...binding, nonce });
  const placeAt = (nonce: number) => ({ ...txPlace, nonce });

  it('seal many transactions in one HPKE context, numbered from 0 (absent) on', () => {
    const session = new SealingSession(NETWORK.publicKey);
    const requests = [0, 1, 2, 3].map((n) => session.sealTx(at(n), { ...call, args: ['oncology', n] }));
    expect(new Set(requests.map((r) => r.sealed.enc)).size).toBe(1);
    expect(requests.map((r) => r.sealed.seq)).toEqual([undefined, 1, 2, 3]);
    expect(requests[0]!.sealed).not.toHaveProperty('seq');
    // Each request has a result key of its own: label || I2OSP(seq, 8), exported from the context.
    expect(new Set(requests.map((r) => toHex(r.resultKey))).size).toBe(4);
  });

  it('open in any order, with or without remembered contexts, to the same calls and result keys', () => {
    const session = new SealingSession(NETWORK.publicKey);
    const requests = [0, 1, 2, 3].map((n) => session.sealTx(at(n), { ...call, args: ['oncology', n] }));
    const sessions = new OpeningSessions();
    for (const n of [3, 1, 0, 2]) {
      const remembered = openTxPayload(NETWORK, placeAt(n), requests[n]!.sealed, sessions);
      const fresh = openTxPayload(NETWORK, placeAt(n), requests[n]!.sealed);
      expect(remembered.args).toEqual(['oncology', n]);
      expect(fresh.args).toEqual(['oncology', n]);
      expect(toHex(remembered.resultKey)).toBe(toHex(requests[n]!.resultKey));
      expect(toHex(fresh.resultKey)).toBe(toHex(requests[n]!.resultKey));
    }
    expect(sessions.size).toBe(1);
    // The result key is the documented export.
    const recipient = setupHpkeRecipient(fromHex(requests[2]!.sealed.enc)!, NETWORK, CONFIDENTIAL_TX_INFO);
    expect(toHex(recipient.export(resultLabel('cloister/tx-result/v1', 2), 32))).toBe(toHex(requests[2]!.resultKey));
  });

  it('bind each message to its number and its transaction: a changed seq, or a message moved to another transaction, does not open', () => {
    const session = new SealingSession(NETWORK.publicKey);
    const first = session.sealTx(at(0), call);
    const second = session.sealTx(at(1), call);
    const sessions = new OpeningSessions();
    expect(openTxPayload(NETWORK, placeAt(1), second.sealed, sessions).method).toBe('record');
    for (const seq of [undefined, 2, 7]) {
      const moved: SealedPayload = { generation: 1, enc: second.sealed.enc, ...(seq ? { seq } : {}), ct: second.sealed.ct };
      expect(codeOf(() => openTxPayload(NETWORK, placeAt(1), moved, sessions)), `seq ${seq}`).toBe('DECRYPT_FAILED');
    }
    // Message 0 under another transaction's nonce, and message 1 as another sender's.
    expect(codeOf(() => openTxPayload(NETWORK, placeAt(1), first.sealed, sessions))).toBe('DECRYPT_FAILED');
    expect(codeOf(() => openTxPayload(NETWORK, { ...placeAt(1), from: other.publicKey }, second.sealed, sessions))).toBe('DECRYPT_FAILED');
    // A remembered context does not open another key's or another session's messages.
    const foreign = new SealingSession(networkKeyPair(secret()).publicKey).sealTx(at(1), call);
    expect(codeOf(() => openTxPayload(NETWORK, placeAt(1), foreign.sealed, sessions))).toBe('DECRYPT_FAILED');
    const otherSession = new SealingSession(NETWORK.publicKey);
    otherSession.sealTx(at(0), call);
    const theirs = otherSession.sealTx(at(1), call);
    expect(codeOf(() => openTxPayload(NETWORK, placeAt(1), { ...theirs.sealed, enc: second.sealed.enc }, sessions))).toBe('DECRYPT_FAILED');
    expect(openTxPayload(NETWORK, placeAt(1), theirs.sealed, sessions).method).toBe('record');
  });

  it('are remembered up to a bound, oldest forgotten first, and what is forgotten still opens', () => {
    const sessions = new OpeningSessions(2);
    const requests = [0, 1, 2].map(() => new SealingSession(NETWORK.publicKey).sealTx(at(0), call));
    for (const r of requests) openTxPayload(NETWORK, placeAt(0), r.sealed, sessions);
    expect(sessions.size).toBe(2);
    expect(openTxPayload(NETWORK, placeAt(0), requests[0]!.sealed, sessions).method).toBe('record');
    expect(sessions.size).toBe(2);
  });

  it('seal calls in a context of their own, numbered the same way', () => {
    const session = new SealingSession(NETWORK.publicKey);
    const tx = session.sealTx(at(0), call);
    const calls = [0, 1].map(() => session.sealCall(callBinding, { method: 'total', args: [] }));
    expect(calls[0]!.sealed.enc).not.toBe(tx.sealed.enc);
    expect(calls[1]!.sealed.seq).toBe(1);
    const sessions = new OpeningSessions();
    for (const c of calls.reverse()) expect(toHex(openCallPayload(NETWORK, callPlace, c.sealed, sessions).resultKey)).toBe(toHex(c.resultKey));
  });
});

describe('sealed call answers', () => {
  const key = new Uint8Array(randomBytes(32));
  const answer: JsonValue = { result: { total: 42 } };

  it('take a fresh random nonce each time: the same call answered twice never reuses a nonce under its key', () => {
    const a = sealCallResult(key, answer);
    const b = sealCallResult(key, answer);
    expect(a).not.toBe(b);
    expect(Buffer.from(a, 'base64').subarray(0, 12).equals(Buffer.from(b, 'base64').subarray(0, 12))).toBe(false);
    expect(openCallResult(key, a)).toEqual(answer);
    expect(openCallResult(key, b)).toEqual(answer);
    // Nonce, ciphertext, tag.
    expect(Buffer.from(a, 'base64').length).toBe(12 + Buffer.byteLength(canonicalize(answer)) + 16);
  });

  it('do not open under another key, altered, truncated, or as a transaction answer', () => {
    const sealed = sealCallResult(key, answer);
    expect(codeOf(() => openCallResult(new Uint8Array(randomBytes(32)), sealed))).toBe('DECRYPT_FAILED');
    const bytes = Buffer.from(sealed, 'base64');
    for (const index of [0, 11, 12, bytes.length - 1]) {
      const tampered = Buffer.from(bytes);
      tampered[index]! ^= 0x01;
      expect(codeOf(() => openCallResult(key, tampered.toString('base64'))), `byte ${index}`).toBe('DECRYPT_FAILED');
    }
    expect(codeOf(() => openCallResult(key, bytes.subarray(0, 27).toString('base64')))).toBe('DECRYPT_FAILED');
    expect(codeOf(() => openCallResult(key, ''))).toBe('DECRYPT_FAILED');
    expect(codeOf(() => openResult(key, sealed))).toBe('DECRYPT_FAILED');
  });
});

describe('sealed results', () => {
  const key = new Uint8Array(randomBytes(32));
  const answer: JsonValue = { result: { total: 42, names: ['a', 'b'] } };

  it('are deterministic: every validator seals the same answer under the same key to the same bytes', () => {
    const a = sealResult(key, answer);
    expect(sealResult(Uint8Array.from(key), { result: { names: ['a', 'b'], total: 42 } })).toBe(a);
    expect(sealResult(key, { result: { total: 43, names: ['a', 'b'] } })).not.toBe(a);
    expect(sealResult(new Uint8Array(randomBytes(32)), answer)).not.toBe(a);
  });

  it('open to the same JSON, and show none of it', () => {
    const sealed = sealResult(key, answer);
    expect(openResult(key, sealed)).toEqual(answer);
    expect(Buffer.from(sealed, 'base64').toString('latin1')).not.toContain('total');
    // Ciphertext plus a 16-byte tag.
    expect(Buffer.from(sealed, 'base64').length).toBe(Buffer.byteLength(canonicalize(answer)) + 16);
    expect(openResult(key, sealResult(key, null))).toBeNull();
    expect(openResult(key, sealResult(key, 'text'))).toBe('text');
  });

  it('do not open under another key, altered, or shorter than a tag', () => {
    const sealed = sealResult(key, answer);
    expect(codeOf(() => openResult(new Uint8Array(randomBytes(32)), sealed))).toBe('DECRYPT_FAILED');
    const bytes = Buffer.from(sealed, 'base64');
    for (const index of [0, bytes.length - 17, bytes.length - 1]) {
      const tampered = Buffer.from(bytes);
      tampered[index]! ^= 0x80;
      expect(codeOf(() => openResult(key, tampered.toString('base64')))).toBe('DECRYPT_FAILED');
    }
    expect(codeOf(() => openResult(key, bytes.subarray(0, 15).toString('base64')))).toBe('DECRYPT_FAILED');
    expect(codeOf(() => openResult(key, ''))).toBe('DECRYPT_FAILED');
    expect(codeOf(() => openResult(key, bytes.subarray(0, bytes.length - 1).toString('base64')))).toBe('DECRYPT_FAILED');
  });

  it('round-trip end to end: the sender opens what the enclave sealed under the key it opened', () => {
    const request = sealTxPayload(NETWORK.publicKey, binding, { method: 'record', args: [] });
    const opened = openTxPayload(NETWORK, txPlace, request.sealed);
    const receipt = sealResult(opened.resultKey, { result: 'ok' });
    expect(openResult(request.resultKey, receipt)).toEqual({ result: 'ok' });
    // Another request's key does not open it.
    const another = sealTxPayload(NETWORK.publicKey, binding, { method: 'record', args: [] });
    expect(codeOf(() => openResult(another.resultKey, receipt))).toBe('DECRYPT_FAILED');
  });
});

describe('sealed transactions on the wire', () => {
  function sealedTx(over: Partial<SealedTxBinding> = {}): SignedTx {
    const b = { ...binding, ...over };
    const { sealed } = sealTxPayload(NETWORK.publicKey, b, { method: 'record', args: [1] });
    return signTx({ chainId: b.chainId, from: b.from, nonce: b.nonce, contract: b.contract, sealed, gasLimit: 100_000 }, signer);
  }

  const plainTx = (): SignedTx =>
    signTx({ chainId: 'test-chain', from: signer.publicKey, nonce: 0, contract: 'counter', method: 'increment', args: [], gasLimit: 100_000 }, signer);

  function malformed(raw: unknown): ChainError {
    const e = errorOf(() => parseSignedTx(raw));
    expect(e.code).toBe('TX_MALFORMED');
    return e;
  }

  it('parse to exactly the sealed fields, and pass the stateless checks', () => {
    const tx = sealedTx();
    const parsed = parseSignedTx(JSON.parse(JSON.stringify(tx)));
    expect(parsed).toEqual(tx);
    expect(Object.keys(parsed).sort()).toEqual(['chainId', 'contract', 'from', 'gasLimit', 'nonce', 'sealed', 'signature']);
    const checked = checkTxStateless(tx, 'test-chain');
    expect(checked.hash).toBe(txHash(tx));
    // What was parsed and checked still opens for the enclave.
    expect(isSealedTx(checked.tx)).toBe(true);
    if (isSealedTx(checked.tx)) expect(openTxPayload(NETWORK, txPlace, checked.tx.sealed).args).toEqual([1]);
  });

  it('carry no method or arguments in the clear', () => {
    const tx = sealedTx();
    expect(malformed({ ...tx, method: 'record' }).message).toMatch(/in the clear/);
    expect(malformed({ ...tx, args: [1] }).message).toMatch(/in the clear/);
    expect(malformed({ ...tx, method: 'record', args: [1] }).message).toMatch(/"method" in the clear/);
    expect(malformed({ ...tx, extra: 1 }).message).toMatch(/unknown field "extra"/);
  });

  it('refuse a generation that is not a positive integer', () => {
    const tx = sealedTx() as SignedTx & { sealed: SealedPayload };
    for (const generation of [0, -1, 1.5, '1', null, Number.MAX_SAFE_INTEGER + 1]) {
      expect(malformed({ ...tx, sealed: { ...tx.sealed, generation } }).message).toMatch(/generation/);
    }
    const { generation: _omit, ...noGeneration } = tx.sealed;
    expect(malformed({ ...tx, sealed: noGeneration }).message).toMatch(/generation/);
  });

  it('refuse an enc that is not 32 bytes of lowercase hex', () => {
    const tx = sealedTx() as SignedTx & { sealed: SealedPayload };
    for (const enc of [tx.sealed.enc.toUpperCase(), tx.sealed.enc.slice(2), tx.sealed.enc + 'ab', 'zz'.repeat(32), 32, undefined]) {
      expect(malformed({ ...tx, sealed: { ...tx.sealed, enc } }).message).toMatch(/sealed\.enc/);
    }
  });

  it('refuse a ct that is not base64 of at least a tag', () => {
    const tx = sealedTx() as SignedTx & { sealed: SealedPayload };
    const ct = tx.sealed.ct;
    for (const bad of [
      '!' + ct.slice(1),
      ct.replace(/[A-Za-z0-9]/, '-'), // base64url is not base64
      ct.slice(0, -1), // not a multiple of 4
      Buffer.alloc(15).toString('base64'), // shorter than a tag (20 characters)
      '',
      ` ${ct.slice(1)}`,
      42,
      null,
    ]) {
      expect(malformed({ ...tx, sealed: { ...tx.sealed, ct: bad } }).message).toMatch(/sealed\.ct/);
    }
    // Exactly one tag is the shortest acceptable shape.
    expect(() => parseSignedTx({ ...tx, sealed: { ...tx.sealed, ct: Buffer.alloc(16).toString('base64') } })).not.toThrow();
  });

  it('carry a session seq only as a positive integer (message 0 has none), and keep it through parsing', () => {
    const tx = sealedTx() as SignedTx & { sealed: SealedPayload };
    for (const seq of [0, -1, 1.5, '2', null, Number.MAX_SAFE_INTEGER + 1]) {
      expect(malformed({ ...tx, sealed: { ...tx.sealed, seq } }).message, String(seq)).toMatch(/sealed\.seq/);
    }
    const withSeq = { ...tx, sealed: { ...tx.sealed, seq: 5 } };
    expect(parseSignedTx(withSeq)).toHaveProperty('sealed', withSeq.sealed);
    // The signature covers it: a seq added to a signed transaction breaks the signature.
    expect(codeOf(() => checkTxStateless(withSeq, 'test-chain'))).toBe('TX_BAD_SIGNATURE');
  });

  it('refuse unknown fields in sealed, and a sealed that is not an object', () => {
    const tx = sealedTx() as SignedTx & { sealed: SealedPayload };
    expect(malformed({ ...tx, sealed: { ...tx.sealed, method: 'record' } }).message).toMatch(/unknown field "sealed\.method"/);
    expect(malformed({ ...tx, sealed: { ...tx.sealed, tag: 'x' } }).message).toMatch(/unknown field "sealed\.tag"/);
    for (const sealed of [null, [], 'ct', 1]) malformed({ ...tx, sealed });
  });

  it('still check the envelope fields as a clear transaction does', () => {
    const tx = sealedTx();
    expect(malformed({ ...tx, gasLimit: 0 }).message).toMatch(/gasLimit/);
    expect(malformed({ ...tx, nonce: -1 }).message).toMatch(/nonce/);
    expect(malformed({ ...tx, contract: 'Bad' }).message).toMatch(/contract/);
    expect(malformed({ ...tx, signature: 'ab' }).message).toMatch(/signature/);
  });

  it('are signed over the sealed body: changing the ciphertext, enc or generation breaks the signature', () => {
    const tx = sealedTx() as SignedTx & { sealed: SealedPayload };
    const flipped = flipCtByte(tx.sealed, 5);
    expect(codeOf(() => checkTxStateless({ ...tx, sealed: flipped }, 'test-chain'))).toBe('TX_BAD_SIGNATURE');
    const otherEnc = sealTxPayload(NETWORK.publicKey, binding, { method: 'record', args: [1] }).sealed.enc;
    expect(codeOf(() => checkTxStateless({ ...tx, sealed: { ...tx.sealed, enc: otherEnc } }, 'test-chain'))).toBe('TX_BAD_SIGNATURE');
    expect(codeOf(() => checkTxStateless({ ...tx, sealed: { ...tx.sealed, generation: 2 } }, 'test-chain'))).toBe('TX_BAD_SIGNATURE');
    expect(codeOf(() => checkTxStateless({ ...tx, nonce: 8 }, 'test-chain'))).toBe('TX_BAD_SIGNATURE');
    // Another sender's signature over the same body is not this sender's.
    const forged = { ...tx, signature: other.sign(new TextEncoder().encode('x')) };
    expect(codeOf(() => checkTxStateless(forged, 'test-chain'))).toBe('TX_BAD_SIGNATURE');
    expect(checkTxStateless(tx, 'test-chain').tx).toEqual(tx);
  });

  it('are told apart from clear transactions, and their body carries no method or arguments', () => {
    const sealed = sealedTx();
    const plain = plainTx();
    expect(isSealedTx(sealed)).toBe(true);
    expect(isSealedTx(plain)).toBe(false);
    expect(isSealedTx(parseSignedTx(JSON.parse(JSON.stringify(sealed))))).toBe(true);
    expect(isSealedTx(parseSignedTx(JSON.parse(JSON.stringify(plain))))).toBe(false);

    const body = txBodyOf(sealed);
    expect(body).not.toHaveProperty('method');
    expect(body).not.toHaveProperty('args');
    expect(body).not.toHaveProperty('signature');
    expect(Object.keys(body).sort()).toEqual(['chainId', 'contract', 'from', 'gasLimit', 'nonce', 'sealed']);
    expect((body as { sealed: SealedPayload }).sealed).toEqual((sealed as { sealed: SealedPayload }).sealed);

    const plainBody = txBodyOf(plain);
    expect(plainBody).not.toHaveProperty('sealed');
    expect(Object.keys(plainBody).sort()).toEqual(['args', 'chainId', 'contract', 'from', 'gasLimit', 'method', 'nonce']);
  });

  it('hash differently from the same transaction sealed again (fresh enc)', () => {
    expect(txHash(sealedTx())).not.toBe(txHash(sealedTx()));
  });
});
