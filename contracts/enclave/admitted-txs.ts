/**
 * Transactions this enclave admitted, by the hash it computed itself, so a block can name them
 * by hash instead of the host sending each one again: the enclave then executes its own copy,
 * already parsed, hashed and verified, and the host cannot swap one in. Bounded in count and in
 * bytes (admission runs before the host's mempool decides whether to keep a transaction, so
 * what is admitted here is not bounded by the mempool): the oldest are forgotten first, and a
 * block naming a forgotten one is refused with TX_REF_UNKNOWN, after which the host sends that
 * block's transactions in full. Committed transactions are forgotten at once.
 */
import type { CheckedTx, SignedTx } from '../../consensus/index.js';

export class AdmittedTxs {
  readonly #txs = new Map<string, { tx: SignedTx; size: number }>();
  #bytes = 0;
  constructor(
    private readonly maxCount = 50_000,
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {}

  add(hash: string, tx: SignedTx, size: number): void {
    if (this.#txs.has(hash) || size > this.maxBytes) return;
    while (this.#txs.size > 0 && (this.#txs.size >= this.maxCount || this.#bytes + size > this.maxBytes)) {
      const oldest = this.#txs.keys().next().value!;
      this.#drop(oldest);
    }
    this.#txs.set(hash, { tx, size });
    this.#bytes += size;
  }

  get(hash: string): CheckedTx | undefined {
    const held = this.#txs.get(hash);
    return held ? { tx: held.tx, hash, size: held.size } : undefined;
  }

  forget(hashes: readonly string[]): void {
    for (const h of hashes) this.#drop(h);
  }

  get size(): number {
    return this.#txs.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  #drop(hash: string): void {
    const held = this.#txs.get(hash);
    if (!held) return;
    this.#txs.delete(hash);
    this.#bytes -= held.size;
  }
}
