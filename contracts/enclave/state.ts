import { applyStateWrites, buildStateTree, stateRootHex, type JsonValue, type StateTreeRoot } from '../../consensus/index.js';

/**
 * Keys of the enclave's state map. Contract state and system records share one
 * ordered key space so a block's write set is one list.
 *   c:<contract>:<key>   a contract's key-value map
 *   n:<address>          the sender's next nonce
 *   k:<contract>         the deployed contract (measurement, manifest, code)
 *   s:secret:<g>         the public commitment of consortium-secret generation g
 *                        (its network key; consortium-keys.ts)
 */
export const stateKey = {
  contract: (contract: string, key: string): string => `c:${contract}:${key}`,
  nonce: (address: string): string => `n:${address}`,
  deployment: (contract: string): string => `k:${contract}`,
  secret: (generation: number): string => `s:secret:${generation}`,
};

/** One state change: the canonical JSON of the new value, or null when deleted. */
export type StateWrite = [key: string, value: string | null];

/** Reads through to the layer below when a key is not written at this layer. */
export interface StateReader {
  read(key: string): string | undefined;
}

/**
 * The committed state, held in enclave memory: the key-value map, and the
 * state tree over it whose root is the last committed header's stateRoot
 * (consensus/state/state-tree.ts).
 */
export class CommittedState implements StateReader {
  readonly #entries = new Map<string, string>();
  #tree: StateTreeRoot = null;

  read(key: string): string | undefined {
    return this.#entries.get(key);
  }

  /** Replaces the whole state (at start), rebuilding the tree. */
  load(entries: Iterable<readonly [string, string]>): void {
    this.#entries.clear();
    for (const [key, value] of entries) this.#entries.set(key, value);
    this.#tree = buildStateTree(this.#entries);
  }

  /** The tree after `writes`, without changing this state (a block being executed). */
  treeAfter(writes: readonly StateWrite[]): StateTreeRoot {
    return applyStateWrites(this.#tree, writes);
  }

  /** Applies a committed block's writes; `tree` is treeAfter(writes), computed when the block was executed. */
  apply(writes: readonly StateWrite[], tree: StateTreeRoot = this.treeAfter(writes)): void {
    for (const [key, value] of writes) {
      if (value === null) this.#entries.delete(key);
      else this.#entries.set(key, value);
    }
    this.#tree = tree;
  }

  get tree(): StateTreeRoot {
    return this.#tree;
  }

  get root(): string {
    return stateRootHex(this.#tree);
  }

  /** Entries whose key starts with the prefix (a full scan: for rare system reads only). */
  *withPrefix(prefix: string): IterableIterator<[string, string]> {
    for (const entry of this.#entries) if (entry[0].startsWith(prefix)) yield entry;
  }

  /** Every entry (a snapshot for the call lane). */
  entries(): [string, string][] {
    return [...this.#entries];
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** Committed state without a tree: a read-only copy that follows commits (the call lane's). */
export class PlainState implements StateReader {
  readonly #entries = new Map<string, string>();

  read(key: string): string | undefined {
    return this.#entries.get(key);
  }

  load(entries: Iterable<readonly [string, string]>): void {
    this.#entries.clear();
    for (const [key, value] of entries) this.#entries.set(key, value);
  }

  apply(writes: readonly StateWrite[]): void {
    for (const [key, value] of writes) {
      if (value === null) this.#entries.delete(key);
      else this.#entries.set(key, value);
    }
  }

  *withPrefix(prefix: string): IterableIterator<[string, string]> {
    for (const entry of this.#entries) if (entry[0].startsWith(prefix)) yield entry;
  }
}

/**
 * A written value whose stored bytes are made only when something needs them
 * (the block's write set, or a reader that wants the stored form). A
 * confidential contract's write is sealed this way: a key that many
 * transactions of a block write is sealed once, with its final value, and a
 * transaction that fails is never sealed at all. `plain` is what the writer
 * gave (its readers in the same block take it without opening anything).
 */
export class DeferredValue {
  #stored: string | undefined;
  constructor(
    readonly plain: string,
    private readonly materialize: () => string,
  ) {}

  get stored(): string {
    return (this.#stored ??= this.materialize());
  }
}

type LayerValue = string | null | DeferredValue;

/** A layer of uncommitted writes (a block, or one transaction inside it). */
export class StateOverlay implements StateReader {
  readonly #writes = new Map<string, LayerValue>();
  constructor(private readonly below: StateReader) {}

  read(key: string): string | undefined {
    const value = this.readLayered(key);
    return value instanceof DeferredValue ? value.stored : value;
  }

  /** Like read, but a deferred value written in this block comes back as it is (its plain form unsealed). */
  readLayered(key: string): string | DeferredValue | undefined {
    if (this.#writes.has(key)) {
      const value = this.#writes.get(key);
      return value === null ? undefined : value;
    }
    return this.below instanceof StateOverlay ? this.below.readLayered(key) : this.below.read(key);
  }

  write(key: string, value: LayerValue): void {
    this.#writes.set(key, value);
  }

  /** Moves this layer's writes into the given overlay (a transaction that succeeded). */
  mergeInto(target: StateOverlay): void {
    for (const [key, value] of this.#writes) target.write(key, value);
  }

  /** The write set, sorted by key so every enclave produces the same bytes (deferred values made now). */
  writeSet(): StateWrite[] {
    const writes: StateWrite[] = [];
    for (const [key, value] of this.#writes) writes.push([key, value instanceof DeferredValue ? value.stored : value]);
    return writes.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  readJson(key: string): JsonValue | null {
    const text = this.read(key);
    return text === undefined ? null : (JSON.parse(text) as JsonValue);
  }
}
