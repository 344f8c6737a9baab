import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SealedIdentity } from '../../../contracts/enclave/index.js';

const key = new Uint8Array(randomBytes(32));

describe('the sealed enclave identity', () => {
  it('reopens with the same vote key and last signature, and never shows the private key', () => {
    const a = SealedIdentity.open(null, key);
    a.claim(3, 1, 'prevote', 'ab');
    const sealed = a.seal();
    expect(sealed).not.toMatch(/privateKey/);
    const b = SealedIdentity.open(sealed, key);
    expect(b.signer.publicKey).toBe(a.signer.publicKey);
    expect(b.lastSign).toEqual({ height: 3, round: 1, step: 2, value: 'ab' });
    // Sealing twice gives different bytes (fresh IV) for the same identity.
    expect(a.seal()).not.toBe(sealed);
  });

  it('signs only forward in (height, round, step), or exactly the same thing again', () => {
    const id = SealedIdentity.open(null, key);
    id.claim(5, 0, 'proposal', 'aa');
    id.claim(5, 0, 'prevote', 'aa');
    expect(() => id.claim(5, 0, 'prevote', 'aa')).not.toThrow();
    expect(() => id.claim(5, 0, 'prevote', 'nil')).toThrow(expect.objectContaining({ code: 'VOTE_CONFLICT' }));
    expect(() => id.claim(5, 0, 'proposal', 'aa')).toThrow(expect.objectContaining({ code: 'VOTE_CONFLICT' }));
    expect(() => id.claim(4, 9, 'precommit', 'nil')).toThrow(expect.objectContaining({ code: 'VOTE_CONFLICT' }));
    id.claim(5, 0, 'precommit', 'aa');
    id.claim(5, 2, 'prevote', 'nil');
    id.claim(6, 0, 'prevote', 'bb');
    expect(id.lastSign).toEqual({ height: 6, round: 0, step: 2, value: 'bb' });
  });

  it('does not open under another key, altered, or in an unknown format', () => {
    const sealed = SealedIdentity.open(null, key).seal();
    expect(() => SealedIdentity.open(sealed, new Uint8Array(randomBytes(32)))).toThrow(expect.objectContaining({ code: 'SEAL_INVALID' }));
    const outer = JSON.parse(sealed) as { ct: string };
    const flipped = Buffer.from(outer.ct, 'base64');
    flipped[0]! ^= 1;
    expect(() => SealedIdentity.open(JSON.stringify({ ...outer, ct: flipped.toString('base64') }), key)).toThrow(
      expect.objectContaining({ code: 'SEAL_INVALID' }),
    );
    expect(() => SealedIdentity.open('not json', key)).toThrow(expect.objectContaining({ code: 'SEAL_INVALID' }));
    expect(() => SealedIdentity.open('{"v":2}', key)).toThrow(expect.objectContaining({ code: 'SEAL_INVALID' }));
  });
});
