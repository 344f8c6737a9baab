import type { StateTreeRoot } from '../../consensus/index.js';
import type { StateReader, StateWrite } from './state.js';

/** How many committed heights keep their state for proofs (the head and the ones before it). */
export const RECENT_STATE_VERSIONS = 16;

interface Version {
  tree: StateTreeRoot;
  /** What the keys this height's block wrote held before it (null: absent); empty for the first version kept. */
  before: Map<string, string | null>;
}

/**
 * The state of the last few committed heights, so that a key can be proved at
 * a recent height and not only at the head: each height's tree (immutable
 * versions share their nodes, so a version costs only the paths its block
 * wrote) and an undo log of the values its block overwrote. The value of a key
 * at height h is what the first later block that wrote it found there, or
 * the head's value when no later block wrote it.
 */
export class RecentStates {
  readonly #versions = new Map<number, Version>();

  constructor(private readonly limit = RECENT_STATE_VERSIONS) {}

  /** The head's state after start or after a new genesis: no earlier version is known. */
  reset(height: number, tree: StateTreeRoot): void {
    this.#versions.clear();
    this.#versions.set(height, { tree, before: new Map() });
  }

  /** Call before applying a committed block's writes to `state`: remembers what they overwrite. */
  committing(writes: readonly StateWrite[], state: StateReader): Map<string, string | null> {
    return new Map(writes.map(([key]) => [key, state.read(key) ?? null]));
  }

  /** Records the committed height `height` with its tree and the values its block overwrote. */
  committed(height: number, tree: StateTreeRoot, before: Map<string, string | null>): void {
    this.#versions.set(height, { tree, before });
    for (const old of this.#versions.keys()) {
      if (this.#versions.size <= this.limit) break;
      this.#versions.delete(old);
    }
  }

  /** The heights kept, oldest first. */
  heights(): number[] {
    return [...this.#versions.keys()];
  }

  treeAt(height: number): StateTreeRoot | undefined {
    return this.#versions.get(height)?.tree;
  }

  /** The value of `key` at a kept height, given the head's state. */
  valueAt(key: string, height: number, head: StateReader): string | null {
    for (const [h, version] of this.#versions) {
      if (h > height && version.before.has(key)) return version.before.get(key)!;
    }
    return head.read(key) ?? null;
  }
}
