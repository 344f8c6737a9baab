/**
 * Hashes of signed transactions this enclave has verified, so a transaction is
 * verified once (at admission) and not again when its block executes. Bounded:
 * the oldest entries are forgotten first, and a forgotten transaction is simply
 * verified again. Lives in enclave memory, which the host cannot write.
 */
export class VerifiedSet {
  readonly #hashes = new Set<string>();
  constructor(private readonly limit = 500_000) {}

  add(hash: string): void {
    if (this.#hashes.has(hash)) return;
    if (this.#hashes.size >= this.limit) {
      const oldest = this.#hashes.values().next().value;
      if (oldest !== undefined) this.#hashes.delete(oldest);
    }
    this.#hashes.add(hash);
  }

  has = (hash: string): boolean => this.#hashes.has(hash);
}
