import { createHash } from 'node:crypto';

/**
 * Binary Merkle tree in the RFC 6962 (Certificate Transparency) shape:
 * leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right), the split
 * at the largest power of two below n, and the empty tree = SHA-256("").
 * The 0x00/0x01 prefixes stop a leaf from being passed off as an inner node.
 */
export interface MerkleProof {
  index: number;
  size: number;
  /** Sibling hashes from the leaf upwards, lowercase hex. */
  path: string[];
}

function leafHash(data: Uint8Array | string): Buffer {
  return createHash('sha256').update(Buffer.from([0])).update(data).digest();
}

function nodeHash(left: Buffer, right: Buffer): Buffer {
  return createHash('sha256').update(Buffer.from([1])).update(left).update(right).digest();
}

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function rootOf(leaves: Buffer[], start: number, end: number): Buffer {
  const n = end - start;
  if (n === 1) return leaves[start]!;
  const k = largestPowerOfTwoBelow(n);
  return nodeHash(rootOf(leaves, start, start + k), rootOf(leaves, start + k, end));
}

export function merkleRoot(items: readonly (Uint8Array | string)[]): string {
  if (items.length === 0) return createHash('sha256').digest('hex');
  const leaves = items.map(leafHash);
  return rootOf(leaves, 0, leaves.length).toString('hex');
}

export function merkleProof(items: readonly (Uint8Array | string)[], index: number): MerkleProof {
  if (!Number.isInteger(index) || index < 0 || index >= items.length) throw new RangeError('leaf index out of range');
  const leaves = items.map(leafHash);
  const path: Buffer[] = [];
  const walk = (start: number, end: number, target: number): void => {
    const n = end - start;
    if (n === 1) return;
    const k = largestPowerOfTwoBelow(n);
    if (target < start + k) {
      walk(start, start + k, target);
      path.push(rootOf(leaves, start + k, end));
    } else {
      walk(start + k, end, target);
      path.push(rootOf(leaves, start, start + k));
    }
  };
  walk(0, leaves.length, index);
  return { index, size: items.length, path: path.map((h) => h.toString('hex')) };
}

export function verifyMerkleProof(item: Uint8Array | string, proof: MerkleProof, rootHex: string): boolean {
  const { index, size, path } = proof;
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) return false;
  // Recompute the root following RFC 9162 section 2.1.3.2.
  let fn = index;
  let sn = size - 1;
  let hash = leafHash(item);
  for (const siblingHex of path) {
    if (sn === 0) return false;
    const sibling = Buffer.from(siblingHex, 'hex');
    if (sibling.length !== 32) return false;
    if ((fn & 1) === 1 || fn === sn) {
      hash = nodeHash(sibling, hash);
      if ((fn & 1) === 0) {
        while ((fn & 1) === 0 && fn !== 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      hash = nodeHash(hash, sibling);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn === 0 && hash.toString('hex') === rootHex;
}
