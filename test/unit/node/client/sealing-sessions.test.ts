/**
 * The typed client's sealing sessions (node/client/confidential.ts): one HPKE
 * context per network key and sender, so validators open a sender's later
 * transactions without a new X25519 agreement, and two senders never share one.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Ed25519Signer, OpeningSessions, generateEd25519KeyPair, networkKeyPair, openTxPayload, sealResult, type SealedPayload } from '../../../../consensus/index.js';
import { SealingSessions, openReceipt, sealTransaction, type ReceiptView, type VerifiedEncryptionKey } from '../../../../node/client/index.js';

const network = networkKeyPair(new Uint8Array(randomBytes(32)));
const key: VerifiedEncryptionKey = { generation: 1, publicKey: network.publicKey, nodeId: 'n', measurement: 'm' };
const alice = new Ed25519Signer(generateEd25519KeyPair().privateKey);
const bob = new Ed25519Signer(generateEd25519KeyPair().privateKey);

function send(sessions: SealingSessions, signer: Ed25519Signer, nonce: number, to = key) {
  const body = { chainId: 'c', from: signer.publicKey, nonce, contract: 'analytics', method: 'record', args: ['x', nonce], gasLimit: 100_000 };
  return sealTransaction(body, signer, to, sessions.for(to, signer.publicKey));
}

const sealedOf = (tx: { tx: unknown }): SealedPayload => (tx.tx as { sealed: SealedPayload }).sealed;

describe('the client sealing sessions', () => {
  it("seal a sender's transactions in one context, numbered, and the enclave opens each with its own result key", () => {
    const sessions = new SealingSessions();
    const sent = [0, 1, 2].map((n) => send(sessions, alice, n));
    expect(new Set(sent.map((s) => sealedOf(s).enc)).size).toBe(1);
    expect(sent.map((s) => sealedOf(s).seq)).toEqual([undefined, 1, 2]);
    const opening = new OpeningSessions();
    for (const [n, s] of sent.entries()) {
      const opened = openTxPayload(network, { chainId: 'c', from: alice.publicKey, nonce: n, contract: 'analytics' }, sealedOf(s), opening);
      expect(opened.args).toEqual(['x', n]);
      expect(Buffer.from(opened.resultKey).equals(Buffer.from(s.resultKey))).toBe(true);
    }
    expect(new Set(sent.map((s) => Buffer.from(s.resultKey).toString('hex'))).size).toBe(3);
  });

  it('never share a context between two senders, nor between two network keys', () => {
    const sessions = new SealingSessions();
    const a = send(sessions, alice, 0);
    const b = send(sessions, bob, 0);
    expect(sealedOf(a).enc).not.toBe(sealedOf(b).enc);
    const rotated: VerifiedEncryptionKey = { ...key, generation: 2, publicKey: networkKeyPair(new Uint8Array(randomBytes(32))).publicKey };
    const c = send(sessions, alice, 1, rotated);
    expect(sealedOf(c).enc).not.toBe(sealedOf(a).enc);
    expect(sealedOf(c)).not.toHaveProperty('seq');
    // Back on the first key, alice's session goes on where it was.
    expect(sealedOf(send(sessions, alice, 1)).seq).toBe(1);
  });

  it("open each receipt's answer with its own request's key only", () => {
    const sessions = new SealingSessions();
    const [first, second] = [send(sessions, alice, 0), send(sessions, alice, 1)];
    const answer = { result: 7, events: [], error: null };
    const receipt: ReceiptView = { txHash: 'h', status: 'success', blockHeight: 1, blockHash: 'b', index: 0, gasUsed: 1, result: null, events: [], sealed: sealResult(first.resultKey, answer) };
    expect(openReceipt(receipt, first.resultKey).opened).toEqual(answer);
    expect(() => openReceipt(receipt, second.resultKey)).toThrow(expect.objectContaining({ code: 'DECRYPT_FAILED' }));
  });
});
