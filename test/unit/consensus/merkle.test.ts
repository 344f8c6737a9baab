import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { merkleProof, merkleRoot, verifyMerkleProof } from '../../../consensus/index.js';

const sha = (...parts: Buffer[]): string => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

describe('Merkle tree (RFC 6962 shape)', () => {
  it('hashes the empty tree as SHA-256 of nothing', () => {
    expect(merkleRoot([])).toBe(sha());
  });

  it('prefixes leaves with 0x00 and nodes with 0x01', () => {
    const a = Buffer.from('a');
    const b = Buffer.from('b');
    const la = Buffer.from(sha(Buffer.from([0]), a), 'hex');
    const lb = Buffer.from(sha(Buffer.from([0]), b), 'hex');
    expect(merkleRoot([a])).toBe(la.toString('hex'));
    expect(merkleRoot([a, b])).toBe(sha(Buffer.from([1]), la, lb));
  });

  it('proves every leaf of trees of many sizes, and refuses tampered proofs', () => {
    for (let n = 1; n <= 17; n++) {
      const items = Array.from({ length: n }, (_, i) => `leaf-${i}`);
      const root = merkleRoot(items);
      for (let i = 0; i < n; i++) {
        const proof = merkleProof(items, i);
        expect(verifyMerkleProof(items[i]!, proof, root)).toBe(true);
        expect(verifyMerkleProof(`other-${i}`, proof, root)).toBe(false);
        if (proof.path.length > 0) {
          const bad = { ...proof, path: [...proof.path] };
          bad.path[0] = bad.path[0]!.replace(/^./, (c) => (c === '0' ? '1' : '0'));
          expect(verifyMerkleProof(items[i]!, bad, root)).toBe(false);
        }
        if (n > 1) expect(verifyMerkleProof(items[i]!, { ...proof, index: (i + 1) % n }, root)).toBe(items[(i + 1) % n] === items[i]);
      }
    }
  });

  it('changes the root when any leaf changes', () => {
    const items = ['a', 'b', 'c', 'd', 'e'];
    const root = merkleRoot(items);
    for (let i = 0; i < items.length; i++) {
      const changed = [...items];
      changed[i] = 'x';
      expect(merkleRoot(changed)).not.toBe(root);
    }
  });
});
