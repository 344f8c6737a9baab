import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  EMPTY_STATE_ROOT,
  applyStateWrites,
  buildStateTree,
  stateProof,
  stateRootHex,
  verifyStateProof,
  type StateTreeWrite,
} from '../../../consensus/index.js';
import { prng } from '../../helpers/prng.js';

const sha = (...parts: (Uint8Array | string)[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** The definition, written out naively: recompute the root of a whole map from scratch. */
function referenceRoot(state: Map<string, string>): string {
  const leaves = [...state].map(([k, v]) => ({ path: sha(Buffer.from(k, 'utf8')), valueHash: sha(Buffer.from(v, 'utf8')) }));
  const bitOf = (p: Buffer, d: number): number => (p[d >> 3]! >> (7 - (d & 7))) & 1;
  const sub = (items: typeof leaves, depth: number): Buffer | null => {
    if (items.length === 0) return null;
    if (items.length === 1) return sha(Buffer.from([0]), items[0]!.path, items[0]!.valueHash);
    const l = sub(items.filter((i) => bitOf(i.path, depth) === 0), depth + 1);
    const r = sub(items.filter((i) => bitOf(i.path, depth) === 1), depth + 1);
    if (l === null && r !== null && items.filter((i) => bitOf(i.path, depth) === 1).length === 1) return r;
    if (r === null && l !== null && items.filter((i) => bitOf(i.path, depth) === 0).length === 1) return l;
    return sha(Buffer.from([1]), l ?? Buffer.alloc(32), r ?? Buffer.alloc(32));
  };
  return (sub(leaves, 0) ?? Buffer.alloc(32)).toString('hex');
}


describe('state tree (sparse Merkle tree over the key-value state)', () => {
  it('the empty state has the all-zero root; one entry is its leaf hash', () => {
    expect(stateRootHex(null)).toBe(EMPTY_STATE_ROOT);
    expect(stateRootHex(buildStateTree([]))).toBe(EMPTY_STATE_ROOT);
    const root = buildStateTree([['n:alice', '3']]);
    expect(stateRootHex(root)).toBe(sha(Buffer.from([0]), sha('n:alice'), sha('3')).toString('hex'));
  });

  it('incremental updates equal a rebuild from scratch, and old roots are left untouched', () => {
    for (const seed of [1, 2, 3]) {
      const random = prng(seed);
      const state = new Map<string, string>();
      let root = buildStateTree([]);
      const history: { root: typeof root; hex: string }[] = [];
      for (let block = 0; block < 40; block++) {
        const writes: StateTreeWrite[] = [];
        const n = 1 + Math.floor(random() * 30);
        for (let i = 0; i < n; i++) {
          const key = `c:token:${Math.floor(random() * 120)}`;
          const value = random() < 0.25 ? null : String(Math.floor(random() * 1000));
          writes.push([key, value]);
        }
        for (const [k, v] of writes) {
          if (v === null) state.delete(k);
          else state.set(k, v);
        }
        root = applyStateWrites(root, writes);
        expect(stateRootHex(root)).toBe(referenceRoot(state));
        history.push({ root, hex: stateRootHex(root) });
      }
      // Structural sharing never mutated an earlier version.
      for (const h of history) expect(stateRootHex(h.root)).toBe(h.hex);
      expect(stateRootHex(buildStateTree(state))).toBe(stateRootHex(root));
    }
  });

  it('the root does not depend on the order of writes to distinct keys; the last write of a key wins', () => {
    const a = applyStateWrites(null, [['x', '1'], ['y', '2'], ['z', '3']]);
    const b = applyStateWrites(null, [['z', '3'], ['x', '1'], ['y', '2']]);
    expect(stateRootHex(a)).toBe(stateRootHex(b));
    const c = applyStateWrites(null, [['x', '9'], ['y', '2'], ['z', '3'], ['x', '1']]);
    expect(stateRootHex(c)).toBe(stateRootHex(a));
    // Deleting everything gives the empty state again.
    expect(stateRootHex(applyStateWrites(a, [['x', null], ['y', null], ['z', null]]))).toBe(EMPTY_STATE_ROOT);
  });

  it('proves inclusion and exclusion, and refuses proofs of anything else', () => {
    const entries: [string, string][] = [];
    for (let i = 0; i < 200; i++) entries.push([`c:token:balance:${i}`, String(i * 7)]);
    const root = buildStateTree(entries);
    const rootHex = stateRootHex(root);
    for (const [k, v] of entries.slice(0, 50)) {
      const proof = stateProof(root, k);
      expect(verifyStateProof(rootHex, k, v, proof)).toBe(true);
      expect(verifyStateProof(rootHex, k, String(Number(v) + 1), proof)).toBe(false);
      expect(verifyStateProof(rootHex, k, null, proof)).toBe(false);
      expect(verifyStateProof(rootHex, `${k}x`, v, proof)).toBe(false);
    }
    for (let i = 200; i < 260; i++) {
      const k = `c:token:balance:${i}`;
      const proof = stateProof(root, k);
      expect(verifyStateProof(rootHex, k, null, proof)).toBe(true);
      expect(verifyStateProof(rootHex, k, '0', proof)).toBe(false);
    }
    // A tampered sibling or another root fails.
    const proof = stateProof(root, 'c:token:balance:3');
    const bad = { ...proof, siblings: proof.siblings.map((s, i) => (i === 0 ? 'f'.repeat(64) : s)) };
    expect(verifyStateProof(rootHex, 'c:token:balance:3', '21', bad)).toBe(false);
    expect(verifyStateProof('1'.repeat(64), 'c:token:balance:3', '21', proof)).toBe(false);
    // Malformed proofs never throw.
    expect(verifyStateProof(rootHex, 'k', null, null as never)).toBe(false);
    expect(verifyStateProof(rootHex, 'k', null, { siblings: ['zz'], leaf: null })).toBe(false);
    expect(verifyStateProof(rootHex, 'k', null, { siblings: 'x' as never, leaf: null })).toBe(false);
  });

  it('proves exclusion in the empty state and in a one-entry state', () => {
    expect(verifyStateProof(EMPTY_STATE_ROOT, 'k', null, stateProof(null, 'k'))).toBe(true);
    const one = buildStateTree([['a', '1']]);
    expect(verifyStateProof(stateRootHex(one), 'b', null, stateProof(one, 'b'))).toBe(true);
    expect(verifyStateProof(stateRootHex(one), 'a', '1', stateProof(one, 'a'))).toBe(true);
  });
});
