/**
 * Transactions this enclave admitted, by the hash it computed itself, so a block can name them
 * by hash instead of the host sending each one again: the enclave then executes its own copy,
 * already parsed, hashed and verified, and the host cannot swap one in. Bounded: the oldest are
 * forgotten first, and a block naming a forgotten one is refused with TX_REF_UNKNOWN, after which
 * the host sends that block's transactions in full. Committed transactions are forgotten at once.
 */
import type { CheckedTx, SignedTx } from '../../consensus/index.js';

export class AdmittedTxs {
  readonly #txs = new Map<string, { tx: SignedTx; size: number }>();
  constructor(private readonly limit = 50_000) {}

  add(hash: string, tx: SignedTx, size: number): void {
    if (this.#txs.has(hash)) return;
    if (this.#txs.size >= this.limit) {
      const oldest = this.#txs.keys().next().value;
      if (oldest !== undefined) this.#txs.delete(oldest);
    }
    this.#txs.set(hash, { tx, size });
  }

  get(hash: string): CheckedTx | undefined {
    const held = this.#txs.get(hash);
    return held ? { tx: held.tx, hash, size: held.size } : undefined;
  }

  forget(hashes: readonly string[]): void {
    for (const h of hashes) this.#txs.delete(h);
  }

  get size(): number {
    return this.#txs.size;
  }
}
