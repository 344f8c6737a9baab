import { ChainError, type CheckedTx, type SignedTx } from '../../consensus/index.js';

export interface MempoolLimits {
  /** Most transactions waiting at once. */
  maxTxs: number;
  /** Most transactions waiting from one sender. */
  maxPerSender: number;
}

export const DEFAULT_MEMPOOL_LIMITS: MempoolLimits = { maxTxs: 50_000, maxPerSender: 1_000 };

interface Entry {
  tx: SignedTx;
  hash: string;
  size: number;
}

/**
 * Transactions that passed every check and wait for a block. Bounded in total and
 * per sender. A sender's transactions are accepted only in nonce order without
 * gaps, so taking them in arrival order gives a valid order for every sender.
 */
export class Mempool {
  readonly #entries = new Map<string, Entry>();
  /** Next nonce per sender with waiting transactions. */
  readonly #nextNonce = new Map<string, number>();
  readonly #perSender = new Map<string, number>();
  #waiters: (() => void)[] = [];

  constructor(private readonly limits: MempoolLimits = DEFAULT_MEMPOOL_LIMITS) {}

  get size(): number {
    return this.#entries.size;
  }

  has(hash: string): boolean {
    return this.#entries.has(hash);
  }

  get(hash: string): SignedTx | undefined {
    return this.#entries.get(hash)?.tx;
  }

  /** The nonce the sender's next transaction must carry, given its committed nonce. */
  nextNonce(sender: string, committedNonce: number): number {
    return this.#nextNonce.get(sender) ?? committedNonce;
  }

  /**
   * Adds a transaction whose stateless checks passed. Refuses a duplicate, a
   * nonce already used (replay) or one that skips ahead (gap), and a full pool.
   */
  add(checked: CheckedTx, committedNonce: number): void {
    const { tx, hash, size } = checked;
    if (this.#entries.has(hash)) throw new ChainError('TX_DUPLICATE', `transaction ${hash} is already waiting`);
    const expected = this.nextNonce(tx.from, committedNonce);
    if (tx.nonce < expected) {
      throw new ChainError('TX_NONCE_TOO_LOW', `nonce ${tx.nonce} is already used; the sender's next nonce is ${expected}`, {
        expected,
      });
    }
    if (tx.nonce > expected) {
      throw new ChainError('TX_NONCE_GAP', `nonce ${tx.nonce} skips ahead; the sender's next nonce is ${expected}`, { expected });
    }
    if (this.#entries.size >= this.limits.maxTxs) {
      throw new ChainError('MEMPOOL_FULL', `the mempool holds its maximum of ${this.limits.maxTxs} transactions; retry later`);
    }
    const count = this.#perSender.get(tx.from) ?? 0;
    if (count >= this.limits.maxPerSender) {
      throw new ChainError('MEMPOOL_FULL', `the sender has ${count} transactions waiting, the maximum; retry later`);
    }
    this.#entries.set(hash, { tx, hash, size });
    this.#perSender.set(tx.from, count + 1);
    this.#nextNonce.set(tx.from, expected + 1);
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
      for (const sender of resetSenders) this.#nextNonce.delete(sender);
    }
  }

  #delete(hash: string): void {
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
