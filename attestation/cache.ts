import { AttestationError } from './errors.js';
import type { AttestationResult } from './result.js';

/**
 * A small bounded LRU of successful verification results, owned by the caller
 * and passed to verifyEvidence as `options.cache` (the library keeps no global
 * state). Keys are `evidenceDigest | trust-anchor fingerprint`, so a result
 * verified under one set of trusted roots is never served for another.
 *
 * Only successes are cached. A cached result is served only while the
 * evaluation time lies inside its `validity` (if it has one); otherwise the
 * entry is dropped and the evidence is verified again. The policy is NOT part
 * of verification and is evaluated by the caller on every use.
 * Results are deep-frozen, so sharing them is safe.
 */
export class VerificationCache {
  readonly maxEntries: number;
  private readonly entries = new Map<string, AttestationResult>();
  hits = 0;
  misses = 0;

  constructor(options: { maxEntries?: number } = {}) {
    const max = options.maxEntries ?? 1024;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new AttestationError('INVALID_ARGUMENT', 'VerificationCache maxEntries must be a positive integer');
    }
    this.maxEntries = max;
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }

  /** The cached result for `key` if still valid at `now`; refreshes its recency. */
  get(key: string, now: Date): AttestationResult | undefined {
    const hit = this.entries.get(key);
    if (hit === undefined) {
      this.misses++;
      return undefined;
    }
    this.entries.delete(key);
    if (hit.validity !== undefined) {
      const t = now.getTime();
      if (t < Date.parse(hit.validity.notBefore) || t > Date.parse(hit.validity.notAfter)) {
        this.misses++;
        return undefined;
      }
    }
    this.entries.set(key, hit);
    this.hits++;
    return hit;
  }

  set(key: string, result: AttestationResult): void {
    this.entries.delete(key);
    this.entries.set(key, result);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }
}
