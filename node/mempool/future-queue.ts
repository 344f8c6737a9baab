import type { SignedTx } from '../../consensus/index.js';

export interface QueuedEntry {
  tx: SignedTx;
  hash: string;
  size: number;
}

/**
 * Transactions whose nonce is ahead of their sender's next one, held until the
 * gap fills. A sender may send to several nodes, and gossip may deliver its
 * transactions out of order: refusing them would lose them where their sender
 * did not send them directly.
 */
export class FutureQueue {
  readonly #bySender = new Map<string, Map<number, QueuedEntry>>();
  readonly #byHash = new Map<string, QueuedEntry>();

  get size(): number {
    return this.#byHash.size;
  }

  has(hash: string): boolean {
    return this.#byHash.has(hash);
  }

  get(hash: string): QueuedEntry | undefined {
    return this.#byHash.get(hash);
  }

  /** The transaction that has waited longest (insertion order). */
  oldest(): QueuedEntry | undefined {
    return this.#byHash.values().next().value;
  }

  count(sender: string): number {
    return this.#bySender.get(sender)?.size ?? 0;
  }

  hasNonce(sender: string, nonce: number): boolean {
    return this.#bySender.get(sender)?.has(nonce) ?? false;
  }

  add(entry: QueuedEntry): void {
    let nonces = this.#bySender.get(entry.tx.from);
    if (!nonces) this.#bySender.set(entry.tx.from, (nonces = new Map()));
    nonces.set(entry.tx.nonce, entry);
    this.#byHash.set(entry.hash, entry);
  }

  /** Removes and returns the sender's transaction with this nonce, if one waits. */
  take(sender: string, nonce: number): QueuedEntry | undefined {
    const entry = this.#bySender.get(sender)?.get(nonce);
    if (entry) this.delete(entry.hash);
    return entry;
  }

  /** Drops the sender's transactions below `nonce`: that nonce is committed, they can never be included. */
  dropBelow(sender: string, nonce: number): void {
    for (const entry of [...(this.#bySender.get(sender)?.values() ?? [])]) if (entry.tx.nonce < nonce) this.delete(entry.hash);
  }

  dropSender(sender: string): void {
    for (const entry of [...(this.#bySender.get(sender)?.values() ?? [])]) this.delete(entry.hash);
  }

  delete(hash: string): void {
    const entry = this.#byHash.get(hash);
    if (!entry) return;
    this.#byHash.delete(hash);
    const nonces = this.#bySender.get(entry.tx.from)!;
    nonces.delete(entry.tx.nonce);
    if (nonces.size === 0) this.#bySender.delete(entry.tx.from);
  }
}
