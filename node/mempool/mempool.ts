import { ChainError, type CheckedTx, type SignedTx } from '../../consensus/index.js';
import { FutureQueue } from './future-queue.js';

export interface MempoolLimits {
  /** Most transactions waiting at once. */
  maxTxs: number;
  /** Most transactions waiting from one sender. */
  maxPerSender: number;
  /** How far ahead of its sender's next nonce a transaction may wait for the gap to fill. */
  maxNonceAhead: number;
  /** Most transactions waiting for a gap to fill, in total (they count towards maxTxs too); when full the oldest gives way. */
  maxQueued: number;
}

/**
 * 20,000 is ten full blocks: beyond that a client waits longer in the pool than
 * it would to retry, and taking in more only starves consensus of CPU.
 */
export const DEFAULT_MEMPOOL_LIMITS: MempoolLimits = { maxTxs: 20_000, maxPerSender: 1_000, maxNonceAhead: 64, maxQueued: 5_000 };

interface Entry {
  tx: SignedTx;
  hash: string;
  size: number;
}

/**
 * Transactions that passed every check and wait for a block. Bounded in total and
 * per sender. Ready transactions continue their sender's nonces without gaps,
 * so taking them in arrival order gives a valid order for every sender; a
 * transaction a little ahead waits in a queue until the gap fills.
 */
export class Mempool {
  readonly #entries = new Map<string, Entry>();
  readonly #future = new FutureQueue();
  /** Next nonce per sender with ready transactions. */
  readonly #nextNonce = new Map<string, number>();
  /** Ready transactions per sender. */
  readonly #perSender = new Map<string, number>();
  readonly limits: MempoolLimits;
  #waiters: (() => void)[] = [];

  constructor(limits: Partial<MempoolLimits> = {}) {
    this.limits = { ...DEFAULT_MEMPOOL_LIMITS, ...limits };
  }

  /** Ready transactions (the ones a block can take now). */
  get size(): number {
    return this.#entries.size;
  }

  /** No room for another transaction (checked before the signature, which costs more). */
  get full(): boolean {
    return this.#entries.size + this.#future.size >= this.limits.maxTxs;
  }

  /** Transactions waiting for an earlier nonce of their sender. */
  get queuedSize(): number {
    return this.#future.size;
  }

  has(hash: string): boolean {
    return this.#entries.has(hash) || this.#future.has(hash);
  }

  get(hash: string): SignedTx | undefined {
    return (this.#entries.get(hash) ?? this.#future.get(hash))?.tx;
  }

  /** The nonce the sender's next transaction must carry, given its committed nonce. */
  nextNonce(sender: string, committedNonce: number): number {
    return this.#nextNonce.get(sender) ?? committedNonce;
  }

  /**
   * Adds a transaction whose stateless checks passed. Refuses a duplicate, a
   * nonce already used (replay) or too far ahead (gap), and a full pool. A
   * transaction at most maxNonceAhead ahead waits until the gap fills.
   */
  add(checked: CheckedTx, committedNonce: number): void {
    const { tx, hash, size } = checked;
    const { maxTxs, maxPerSender, maxNonceAhead, maxQueued } = this.limits;
    if (this.has(hash)) throw new ChainError('TX_DUPLICATE', `transaction ${hash} is already waiting`);
    const expected = this.nextNonce(tx.from, committedNonce);
    if (tx.nonce < expected) {
      throw new ChainError('TX_NONCE_TOO_LOW', `nonce ${tx.nonce} is already used; the sender's next nonce is ${expected}`, {
        expected,
      });
    }
    if (tx.nonce > expected + maxNonceAhead) {
      throw new ChainError('TX_NONCE_GAP', `nonce ${tx.nonce} skips more than ${maxNonceAhead} ahead; the sender's next nonce is ${expected}`, {
        expected,
      });
    }
    if (this.#entries.size + this.#future.size >= maxTxs) {
      throw new ChainError('MEMPOOL_FULL', `the mempool holds its maximum of ${maxTxs} transactions; retry later`);
    }
    const count = (this.#perSender.get(tx.from) ?? 0) + this.#future.count(tx.from);
    if (count >= maxPerSender) {
      throw new ChainError('MEMPOOL_FULL', `the sender has ${count} transactions waiting, the maximum; retry later`);
    }
    if (tx.nonce > expected) {
      if (this.#future.hasNonce(tx.from, tx.nonce)) {
        throw new ChainError('TX_DUPLICATE', `another transaction with nonce ${tx.nonce} of this sender is already waiting`);
      }
      // Full: the one that waited longest for its gap gives way (its sender may
      // never fill it), so stuck transactions cannot hold the queue forever.
      if (this.#future.size >= maxQueued) this.#future.delete(this.#future.oldest()!.hash);
      this.#future.add({ tx, hash, size });
      return;
    }
    this.#ready({ tx, hash, size });
    this.#promote(tx.from);
  }

  #ready(entry: Entry): void {
    const sender = entry.tx.from;
    this.#entries.set(entry.hash, entry);
    this.#perSender.set(sender, (this.#perSender.get(sender) ?? 0) + 1);
    this.#nextNonce.set(sender, entry.tx.nonce + 1);
  }

  /** Moves the sender's queued transactions that now continue its nonces into the ready set. */
  #promote(sender: string, from = this.#nextNonce.get(sender)): void {
    if (from === undefined) return;
    for (let entry = this.#future.take(sender, from); entry; entry = this.#future.take(sender, entry.tx.nonce + 1)) {
      this.#ready(entry);
    }
    this.#wake();
  }

  /**
   * A block committed the sender's nonces below `committedNonce`: queued
   * transactions below it can never be included, and one at it is ready now
   * (when the sender has no ready transactions left to continue from).
   */
  committed(sender: string, committedNonce: number): void {
    this.#future.dropBelow(sender, committedNonce);
    if (!this.#nextNonce.has(sender)) this.#promote(sender, committedNonce);
  }

  #wake(): void {
    if (this.#entries.size === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Up to maxTxs transactions (and maxBytes), oldest first, without removing them. */
  take(maxTxs: number, maxBytes: number): SignedTx[] {
    const out: SignedTx[] = [];
    let bytes = 0;
    for (const entry of this.#entries.values()) {
      if (out.length >= maxTxs || bytes + entry.size > maxBytes) break;
      out.push(entry.tx);
      bytes += entry.size;
    }
    return out;
  }

  /**
   * Removes transactions that a committed block included or that the enclave
   * refused. A refused transaction breaks its sender's chain of nonces, so the
   * sender's later transactions are dropped too and it starts again from its
   * committed nonce.
   */
  remove(hashes: Iterable<string>, refused: Iterable<string> = []): void {
    for (const hash of hashes) this.#delete(hash);
    const resetSenders = new Set<string>();
    for (const hash of refused) {
      const entry = this.#entries.get(hash);
      if (entry) resetSenders.add(entry.tx.from);
      this.#delete(hash);
    }
    if (resetSenders.size > 0) {
      for (const [hash, entry] of this.#entries) if (resetSenders.has(entry.tx.from)) this.#delete(hash);
      for (const sender of resetSenders) {
        this.#nextNonce.delete(sender);
        this.#future.dropSender(sender);
      }
    }
  }

  #delete(hash: string): void {
    this.#future.delete(hash);
    const entry = this.#entries.get(hash);
    if (!entry) return;
    this.#entries.delete(hash);
    const sender = entry.tx.from;
    const count = (this.#perSender.get(sender) ?? 1) - 1;
    if (count <= 0) {
      this.#perSender.delete(sender);
      this.#nextNonce.delete(sender);
    } else {
      this.#perSender.set(sender, count);
    }
  }

  /**
   * Resolves when at least one transaction waits (at once if one does), or
   * after `maxWaitMs` when given; a timed-out waiter is dropped, so an idle
   * chain does not pile them up.
   */
  whenNotEmpty(maxWaitMs?: number): Promise<void> {
    if (this.#entries.size > 0) return Promise.resolve();
    return new Promise((resolve) => {
      if (maxWaitMs === undefined) {
        this.#waiters.push(resolve);
        return;
      }
      const wake = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== wake);
        resolve();
      }, maxWaitMs);
      this.#waiters.push(wake);
    });
  }

  /** Wakes every waiter (used when stopping). */
  wakeAll(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
