import { hash } from 'node:crypto';
import { isHexOfLength } from '../encoding/hex.js';

/**
 * The state commitment: a sparse Merkle tree over the whole key-value state
 * (the shape Diem and Aptos use, with SHA-256 and domain bytes), so that the
 * header's `stateRoot` commits to every key and value, an enclave can check
 * state loaded from disk against a certified header, and anyone can verify
 * a single key's value (or its absence) with a short proof.
 *
 * Layout:
 *   path(key)     = SHA-256(UTF-8 key): 256 bits, most significant bit first;
 *                   bit d chooses the left (0) or right (1) child at depth d.
 *   leaf          = SHA-256(0x00 ‖ path ‖ SHA-256(UTF-8 value))
 *   inner node    = SHA-256(0x01 ‖ left ‖ right)
 *   empty subtree = 32 zero bytes
 * A subtree holding exactly one entry is that entry's leaf (placed as high as
 * it can go); a subtree holding two or more is an inner node at every depth
 * down to where their paths part. The empty state's root is 32 zero bytes.
 *
 * Nodes are immutable and shared between versions: applying a block's writes
 * to a root returns a new root and leaves the old one intact (a proposal is
 * executed on the committed state without touching it), hashing only the
 * nodes on the written paths.
 */

export type StateTreeNode = StateTreeLeaf | StateTreeInner;

export interface StateTreeLeaf {
  readonly leaf: true;
  readonly path: Buffer;
  readonly valueHash: Buffer;
  readonly hash: Buffer;
}

export interface StateTreeInner {
  readonly leaf: false;
  readonly left: StateTreeNode | null;
  readonly right: StateTreeNode | null;
  readonly hash: Buffer;
}

/** A root is a node, or null for the empty state. */
export type StateTreeRoot = StateTreeNode | null;

/** One change: the new value (canonical JSON text), or null when the key is deleted. */
export type StateTreeWrite = readonly [key: string, value: string | null];

const EMPTY = Buffer.alloc(32);
export const EMPTY_STATE_ROOT = '0'.repeat(64);

const scratch = Buffer.alloc(65);

/** SHA-256 (strings as UTF-8). */
function sha256(data: Uint8Array | string): Buffer {
  return hash('sha256', data, 'buffer') as unknown as Buffer;
}

/** Paths of recently written keys: the same senders and balances are written block after block. */
const pathCache = new Map<string, Buffer>();
const PATH_CACHE_LIMIT = 200_000;

export function statePath(key: string): Buffer {
  let path = pathCache.get(key);
  if (path === undefined) {
    path = sha256(key);
    if (pathCache.size >= PATH_CACHE_LIMIT) pathCache.clear();
    pathCache.set(key, path);
  }
  return path;
}

export function valueHashOf(value: string): Buffer {
  return sha256(value);
}

function leafHash(path: Uint8Array, valueHash: Uint8Array): Buffer {
  scratch[0] = 0;
  scratch.set(path, 1);
  scratch.set(valueHash, 33);
  return sha256(scratch);
}

function innerHash(left: Uint8Array, right: Uint8Array): Buffer {
  scratch[0] = 1;
  scratch.set(left, 1);
  scratch.set(right, 33);
  return sha256(scratch);
}

function bit(path: Uint8Array, depth: number): number {
  return (path[depth >> 3]! >> (7 - (depth & 7))) & 1;
}

function makeLeaf(path: Buffer, valueHash: Buffer): StateTreeLeaf {
  return { leaf: true, path, valueHash, hash: leafHash(path, valueHash) };
}

/** An inner node, or what it collapses to: nothing, or a lone leaf that moves up. */
function makeInner(left: StateTreeNode | null, right: StateTreeNode | null): StateTreeNode | null {
  if (left === null && right === null) return null;
  if (left === null && right!.leaf) return right;
  if (right === null && left!.leaf) return left;
  return { leaf: false, left, right, hash: innerHash(left?.hash ?? EMPTY, right?.hash ?? EMPTY) };
}

interface Entry {
  path: Buffer;
  /** null: delete. */
  valueHash: Buffer | null;
}

/** The subtree at `depth` holding exactly `entries` (sorted by path, all present). */
function build(entries: Entry[], lo: number, hi: number, depth: number): StateTreeNode | null {
  if (lo >= hi) return null;
  if (hi - lo === 1) return makeLeaf(entries[lo]!.path, entries[lo]!.valueHash!);
  if (depth >= 256) throw new Error('state tree: two entries share a path');
  const mid = split(entries, lo, hi, depth);
  return makeInner(build(entries, lo, mid, depth + 1), build(entries, mid, hi, depth + 1));
}

/** First index in [lo, hi) whose path has bit `depth` set (entries are sorted). */
function split(entries: Entry[], lo: number, hi: number, depth: number): number {
  let a = lo;
  let b = hi;
  while (a < b) {
    const m = (a + b) >> 1;
    if (bit(entries[m]!.path, depth) === 0) a = m + 1;
    else b = m;
  }
  return a;
}

function update(node: StateTreeNode | null, writes: Entry[], lo: number, hi: number, depth: number): StateTreeNode | null {
  if (lo >= hi) return node;
  if (node === null) {
    const present = writes.slice(lo, hi).filter((w) => w.valueHash !== null);
    return build(present, 0, present.length, depth);
  }
  if (node.leaf) {
    // Merge the lone leaf with the writes below this point.
    const merged: Entry[] = [];
    let placed = false;
    for (let i = lo; i < hi; i++) {
      const w = writes[i]!;
      const order = Buffer.compare(node.path, w.path);
      if (!placed && order < 0) {
        merged.push({ path: node.path, valueHash: node.valueHash });
        placed = true;
      }
      if (order === 0) placed = true; // overwritten or deleted
      if (w.valueHash !== null) merged.push(w);
    }
    if (!placed) merged.push({ path: node.path, valueHash: node.valueHash });
    return build(merged, 0, merged.length, depth);
  }
  const mid = split(writes, lo, hi, depth);
  const left = update(node.left, writes, lo, mid, depth + 1);
  const right = update(node.right, writes, mid, hi, depth + 1);
  if (left === node.left && right === node.right) return node;
  return makeInner(left, right);
}

function sortedEntries(writes: readonly StateTreeWrite[]): Entry[] {
  const byPath = new Map<string, Entry>();
  for (const [key, value] of writes) {
    const path = statePath(key);
    // The last write of a key wins, as when the writes are applied in order.
    byPath.set(path.toString('latin1'), { path, valueHash: value === null ? null : valueHashOf(value) });
  }
  return [...byPath.values()].sort((a, b) => Buffer.compare(a.path, b.path));
}

/** The root after applying `writes` (later writes of a key win) to `root`; `root` is left unchanged. */
export function applyStateWrites(root: StateTreeRoot, writes: readonly StateTreeWrite[]): StateTreeRoot {
  const entries = sortedEntries(writes);
  return update(root, entries, 0, entries.length, 0);
}

/** The tree holding exactly these entries. */
export function buildStateTree(entries: Iterable<readonly [string, string]>): StateTreeRoot {
  const list: StateTreeWrite[] = [];
  for (const [key, value] of entries) list.push([key, value]);
  return applyStateWrites(null, list);
}

/** The root hash, lowercase hex (the header's stateRoot). */
export function stateRootHex(root: StateTreeRoot): string {
  return root === null ? EMPTY_STATE_ROOT : root.hash.toString('hex');
}

// ---------------------------------------------------------------- proofs

/**
 * A proof about one key: the sibling hashes on the way down from the root
 * along the key's path, and what the walk ended on (an empty subtree, or a
 * leaf: the key's own leaf for an inclusion proof, another key's leaf sharing
 * the first `siblings.length` bits for an exclusion proof).
 */
export interface StateProof {
  /** Sibling hashes from the root downwards, lowercase hex (their count is the depth of the end). */
  siblings: string[];
  /** The leaf the walk ended on, or null for an empty subtree. */
  leaf: { path: string; valueHash: string } | null;
}

export function stateProof(root: StateTreeRoot, key: string): StateProof {
  const path = statePath(key);
  const siblings: string[] = [];
  let node = root;
  let depth = 0;
  while (node !== null && !node.leaf) {
    const right = bit(path, depth) === 1;
    siblings.push(((right ? node.left : node.right)?.hash ?? EMPTY).toString('hex'));
    node = right ? node.right : node.left;
    depth++;
  }
  return { siblings, leaf: node === null ? null : { path: node.path.toString('hex'), valueHash: node.valueHash.toString('hex') } };
}

/**
 * Checks that under `rootHex` the key holds `value` (canonical JSON text), or
 * is absent when `value` is null. Pure; never throws on malformed input.
 */
export function verifyStateProof(rootHex: string, key: string, value: string | null, proof: StateProof): boolean {
  try {
    if (!isHexOfLength(rootHex, 32) || typeof key !== 'string' || typeof proof !== 'object' || proof === null) return false;
    const { siblings, leaf } = proof;
    if (!Array.isArray(siblings) || siblings.length > 256 || !siblings.every((s) => isHexOfLength(s, 32))) return false;
    const path = statePath(key);
    let current: Buffer;
    if (value !== null) {
      if (leaf === null || leaf.path !== path.toString('hex') || leaf.valueHash !== valueHashOf(value).toString('hex')) return false;
      current = leafHash(path, Buffer.from(leaf.valueHash, 'hex'));
    } else if (leaf === null) {
      current = EMPTY;
    } else {
      if (!isHexOfLength(leaf.path, 32) || !isHexOfLength(leaf.valueHash, 32) || leaf.path === path.toString('hex')) return false;
      const other = Buffer.from(leaf.path, 'hex');
      // The other leaf must lie on the key's path down to where the walk ended.
      for (let d = 0; d < siblings.length; d++) if (bit(other, d) !== bit(path, d)) return false;
      current = leafHash(other, Buffer.from(leaf.valueHash, 'hex'));
    }
    if (siblings.length === 0 && value === null && leaf === null) return rootHex === EMPTY_STATE_ROOT;
    for (let d = siblings.length - 1; d >= 0; d--) {
      const sibling = Buffer.from(siblings[d]!, 'hex');
      current = bit(path, d) === 1 ? innerHash(sibling, current) : innerHash(current, sibling);
    }
    return current.toString('hex') === rootHex;
  } catch {
    return false;
  }
}
