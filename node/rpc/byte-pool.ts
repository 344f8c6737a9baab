/**
 * The bytes the server holds for requests in flight (bodies being read,
 * responses being built and sent), counted against one limit for all clients
 * together, so that many requests at once cannot exhaust the node's memory.
 */
export class BytePool {
  #used = 0;

  constructor(readonly limit: number) {}

  get used(): number {
    return this.#used;
  }

  /** Takes `bytes` if they fit; false (and nothing taken) if not. */
  tryTake(bytes: number): boolean {
    if (this.#used + bytes > this.limit) return false;
    this.#used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }

  /** A share for one request, given back whole when the request ends. */
  lease(): ByteLease {
    return new ByteLease(this);
  }
}

/**
 * One request's share of the pool. `close()` gives back everything at once, so
 * no path through the server can leak bytes; after it, nothing more is taken
 * (work still running for a client that went away fails its reservations).
 */
export class ByteLease {
  #held = 0;
  #closed = false;

  constructor(private readonly pool: BytePool) {}

  get held(): number {
    return this.#held;
  }

  tryTake(bytes: number): boolean {
    if (this.#closed || !this.pool.tryTake(bytes)) return false;
    this.#held += bytes;
    return true;
  }

  release(bytes: number): void {
    const given = Math.min(bytes, this.#held);
    this.#held -= given;
    this.pool.release(given);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.release(this.#held);
  }
}
