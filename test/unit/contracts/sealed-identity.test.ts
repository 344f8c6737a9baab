import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Ed25519Signer, generateEd25519KeyPair, voteMessage, type SafetyContext, type SignedVote } from '../../../consensus/index.js';
import { SealedIdentity } from '../../../contracts/enclave/index.js';

const key = new Uint8Array(randomBytes(32));
const validators = Array.from({ length: 4 }, () => new Ed25519Signer(generateEd25519KeyPair().privateKey));
const context: SafetyContext = { chainId: 'c', validators: validators.map((v) => v.publicKey), quorum: 3 };
const A = 'aa'.repeat(32);
const B = 'bb'.repeat(32);

function prevotes(height: number, round: number, blockHash: string, by = validators.slice(0, 3)): SignedVote[] {
  return by.map((s) => {
    const vote = { chainId: 'c', type: 'prevote' as const, height, round, blockHash };
    return { vote, validator: s.publicKey, signature: s.sign(voteMessage(vote)) };
  });
}

describe('the sealed enclave identity', () => {
  it('reopens with the same vote key, last signature and lock, and never shows the private key', () => {
    const a = SealedIdentity.open([], key);
    expect(a.from).toBeNull();
    a.claim({ step: 'prevote', height: 3, round: 1, blockHash: A }, context);
    a.claim({ step: 'precommit', height: 3, round: 1, blockHash: A, justification: prevotes(3, 1, A) }, context);
    const sealed = a.seal();
    expect(sealed).not.toMatch(/privateKey/);
    const b = SealedIdentity.open([sealed], key);
    expect(b.from).toBe(0);
    expect(b.signer.publicKey).toBe(a.signer.publicKey);
    expect(b.lastSign).toEqual({ height: 3, round: 1, step: 3, value: A });
    expect(b.lock).toEqual({ height: 3, round: 1, blockHash: A });
    // Sealing twice gives different bytes (fresh IV) for the same identity.
    expect(a.seal()).not.toBe(sealed);
  });

  it('opens the newest of several blobs, skipping one torn by a crash', () => {
    const id = SealedIdentity.open([], key);
    id.claim({ step: 'prevote', height: 1, round: 0, blockHash: null }, context);
    const older = id.seal();
    id.claim({ step: 'precommit', height: 1, round: 0, blockHash: null }, context);
    const newer = id.seal();
    expect(SealedIdentity.open([older, newer], key).lastSign).toMatchObject({ step: 3 });
    const reopened = SealedIdentity.open([newer, older], key);
    expect(reopened.lastSign).toMatchObject({ step: 3 });
    expect(reopened.from).toBe(0);
    // A torn write: half a blob, next to the intact previous one.
    expect(SealedIdentity.open([newer.slice(0, newer.length / 2), older], key).lastSign).toMatchObject({ step: 2 });
    // Two different identities are never merged.
    const other = SealedIdentity.open([], key).seal();
    expect(() => SealedIdentity.open([newer, other], key)).toThrow(expect.objectContaining({ code: 'SEAL_INVALID' }));
  });

  it('signs only under the safety rules, and nothing changes when it refuses', () => {
    const id = SealedIdentity.open([], key);
    id.claim({ step: 'proposal', height: 5, round: 0, blockHash: A }, context);
    id.claim({ step: 'prevote', height: 5, round: 0, blockHash: A }, context);
    expect(() => id.claim({ step: 'prevote', height: 5, round: 0, blockHash: A }, context)).not.toThrow();
    expect(() => id.claim({ step: 'prevote', height: 5, round: 0, blockHash: null }, context)).toThrow(expect.objectContaining({ code: 'VOTE_CONFLICT' }));
    expect(() => id.claim({ step: 'precommit', height: 5, round: 0, blockHash: A }, context)).toThrow(expect.objectContaining({ code: 'VOTE_UNJUSTIFIED' }));
    expect(id.lastSign).toEqual({ height: 5, round: 0, step: 2, value: A });
    id.claim({ step: 'precommit', height: 5, round: 0, blockHash: A, justification: prevotes(5, 0, A) }, context);
    expect(id.lock).toEqual({ height: 5, round: 0, blockHash: A });
    // Locked on A: a prevote for B needs a proof of lock for B from a later round.
    expect(() => id.claim({ step: 'prevote', height: 5, round: 2, blockHash: B }, context)).toThrow(expect.objectContaining({ code: 'VOTE_UNJUSTIFIED' }));
    id.claim({ step: 'prevote', height: 5, round: 3, blockHash: B, justification: prevotes(5, 1, B) }, context);
    id.claim({ step: 'prevote', height: 6, round: 0, blockHash: B }, context);
    expect(id.lastSign).toEqual({ height: 6, round: 0, step: 2, value: B });
    expect(id.lock).toBeNull();
  });

  it('does not open under another key, altered, or in an unknown format', () => {
    const sealed = SealedIdentity.open([], key).seal();
    expect(() => SealedIdentity.open([sealed], new Uint8Array(randomBytes(32)))).toThrow(expect.objectContaining({ code: 'SEAL_INVALID' }));
    const outer = JSON.parse(sealed) as { ct: string };
    const flipped = Buffer.from(outer.ct, 'base64');
    flipped[0]! ^= 1;
    expect(() => SealedIdentity.open([JSON.stringify({ ...outer, ct: flipped.toString('base64') })], key)).toThrow(
      expect.objectContaining({ code: 'SEAL_INVALID' }),
    );
    expect(() => SealedIdentity.open(['not json'], key)).toThrow(expect.objectContaining({ code: 'SEAL_INVALID' }));
    expect(() => SealedIdentity.open(['{"v":2}'], key)).toThrow(expect.objectContaining({ code: 'SEAL_INVALID' }));
  });
});
