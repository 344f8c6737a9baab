/**
 * One token bucket per key (a peer id): up to `capacity` tokens, refilled
 * continuously at `refillPerMs`. Pure: the caller passes the time. The number
 * of keys is bounded by the caller (here, the genesis validators).
 */
export interface TokenBucketLimits {
  capacity: number;
  /** Tokens added per millisecond. */
  refillPerMs: number;
}

export type TakeResult = { ok: true } | { ok: false; retryAfterMs: number };

export class TokenBuckets {
  readonly #limits: TokenBucketLimits;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(limits: TokenBucketLimits) {
    if (!(limits.capacity >= 1) || !(limits.refillPerMs > 0)) throw new RangeError('a token bucket needs capacity ≥ 1 and a positive refill rate');
    this.#limits = limits;
  }

  /** Takes one token for `key` at time `now` (ms), or says how long until one is available. */
  take(key: string, now: number): TakeResult {
    const { capacity, refillPerMs } = this.#limits;
    const bucket = this.#buckets.get(key) ?? { tokens: capacity, at: now };
    // A clock that went backwards refills nothing rather than taking tokens away.
    bucket.tokens = Math.min(capacity, bucket.tokens + Math.max(0, now - bucket.at) * refillPerMs);
    bucket.at = now;
    this.#buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil((1 - bucket.tokens) / refillPerMs) };
  }
}
