import type { ByteLease } from './byte-pool.js';
import { RpcFault } from './errors.js';

export interface ResponseLimits {
  /** One JSON-RPC response. */
  maxResponseBytes: number;
  /** All the results of one HTTP request. */
  maxBatchResponseBytes: number;
}

/**
 * What a method handler gets after its params: it reserves the bytes of its
 * response before the work that produces them (reading a block's transactions),
 * so the node never materialises what it could not send.
 */
export interface CallContext {
  /** Throws an RpcFault (RESPONSE_TOO_LARGE, BATCH_BUDGET_EXCEEDED or SERVER_BUSY) when the bytes do not fit. */
  reserve(bytes: number): void;
}

/**
 * The result bytes one HTTP request (a single call or a batch) may send,
 * charged to the server's in-flight pool too. Error responses are not charged:
 * they are small and bounded by the batch size, and must always be sent.
 */
export class ResponseBudget {
  #used = 0;

  constructor(
    readonly limits: ResponseLimits,
    private readonly lease?: ByteLease,
  ) {}

  get used(): number {
    return this.#used;
  }

  /** A budget for one entry of the request. */
  entry(): EntryBudget {
    return new EntryBudget(this);
  }

  /** Takes bytes for the request; the fault to answer with when they do not fit. */
  take(bytes: number): RpcFault | null {
    if (this.#used + bytes > this.limits.maxBatchResponseBytes) {
      return RpcFault.of('BATCH_BUDGET_EXCEEDED', { limit: this.limits.maxBatchResponseBytes });
    }
    if (this.lease && !this.lease.tryTake(bytes)) return RpcFault.of('SERVER_BUSY', { reason: 'too many bytes in flight' });
    this.#used += bytes;
    return null;
  }

  release(bytes: number): void {
    this.#used -= bytes;
    this.lease?.release(bytes);
  }
}

/** One entry's share: reservations made while it runs, settled to its real size once serialized. */
export class EntryBudget implements CallContext {
  #reserved = 0;

  constructor(private readonly request: ResponseBudget) {}

  reserve(bytes: number): void {
    const fault = this.#tooLarge(this.#reserved + bytes) ?? this.request.take(bytes);
    if (fault) throw fault;
    this.#reserved += bytes;
  }

  /** Charges the serialized response's real size instead of what was reserved; the fault to send instead, if it does not fit. */
  settle(size: number): RpcFault | null {
    const fault = this.#tooLarge(size) ?? (size > this.#reserved ? this.request.take(size - this.#reserved) : null);
    if (fault) {
      this.cancel();
      return fault;
    }
    if (size < this.#reserved) this.request.release(this.#reserved - size);
    this.#reserved = 0;
    return null;
  }

  /** Gives back what was reserved (the entry answered with an error, or is a notification). */
  cancel(): void {
    this.request.release(this.#reserved);
    this.#reserved = 0;
  }

  #tooLarge(size: number): RpcFault | null {
    const limit = this.request.limits.maxResponseBytes;
    return size > limit ? RpcFault.of('RESPONSE_TOO_LARGE', { limit, size }) : null;
  }
}
