import type { ByteLease } from './byte-pool.js';
import { RpcFault } from './errors.js';
import type { RpcSession } from './session.js';

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
  /**
   * Reserves an upper bound of the bytes the work will produce. Rejects with an
   * RpcFault (RESPONSE_TOO_LARGE, BATCH_BUDGET_EXCEEDED or SERVER_BUSY) when
   * they do not fit; may wait while other entries' reservations are settled.
   */
  reserve(bytes: number): Promise<void>;
  /** The WebSocket connection the call came on; undefined over HTTP. */
  readonly session?: RpcSession | undefined;
}

/**
 * The result bytes one HTTP request (a single call or a batch) may send, also
 * charged to the server's in-flight pool. Bytes are either sent (a result was
 * serialized) or reserved (an entry is building one, at most that large).
 * An entry is refused only when its bytes would take what was really sent
 * past the limit; while the reservations of other entries still running are in
 * the way, it waits for them to settle (they are upper bounds, and usually far
 * above what is sent). Error responses are not charged: they are small, bounded
 * by the batch size, and must always be sent.
 */
export class ResponseBudget {
  #sent = 0;
  #reserved = 0;
  #waiting: (() => void)[] = [];

  constructor(
    readonly limits: ResponseLimits,
    private readonly lease?: ByteLease,
    private readonly session?: RpcSession,
  ) {}

  /** Bytes of results serialized so far. */
  get sent(): number {
    return this.#sent;
  }

  /** A budget for one entry of the request. */
  entry(): EntryBudget {
    return new EntryBudget(this, this.session);
  }

  async reserve(bytes: number): Promise<RpcFault | null> {
    const limit = this.limits.maxBatchResponseBytes;
    while (this.#sent + this.#reserved + bytes > limit) {
      if (this.#sent + bytes > limit) return this.#exceeded();
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    if (this.lease && !this.lease.tryTake(bytes)) return busy();
    this.#reserved += bytes;
    return null;
  }

  /** Charges a result of `size` bytes in place of the `reserved` bytes its entry held. */
  settle(size: number, reserved: number): RpcFault | null {
    this.#reserved -= reserved;
    this.#wake();
    if (this.#sent + size > this.limits.maxBatchResponseBytes) {
      this.lease?.release(reserved);
      return this.#exceeded();
    }
    if (size > reserved && this.lease && !this.lease.tryTake(size - reserved)) {
      this.lease.release(reserved);
      return busy();
    }
    if (size < reserved) this.lease?.release(reserved - size);
    this.#sent += size;
    return null;
  }

  /** Gives back a reservation whose entry answered with an error. */
  cancel(reserved: number): void {
    if (reserved === 0) return;
    this.#reserved -= reserved;
    this.lease?.release(reserved);
    this.#wake();
  }

  #wake(): void {
    for (const resolve of this.#waiting.splice(0)) resolve();
  }

  #exceeded(): RpcFault {
    return RpcFault.of('BATCH_BUDGET_EXCEEDED', { limit: this.limits.maxBatchResponseBytes });
  }
}

function busy(): RpcFault {
  return RpcFault.of('SERVER_BUSY', { reason: 'too many bytes in flight' });
}

/** One entry's share: what it reserved while it runs, settled to its real size once serialized. */
export class EntryBudget implements CallContext {
  #reserved = 0;

  constructor(
    private readonly request: ResponseBudget,
    readonly session?: RpcSession,
  ) {}

  async reserve(bytes: number): Promise<void> {
    const fault = this.#tooLarge(this.#reserved + bytes) ?? (await this.request.reserve(bytes));
    if (fault) throw fault;
    this.#reserved += bytes;
  }

  /** Charges the serialized response's real size in place of what was reserved; the fault to send instead, if it does not fit. */
  settle(size: number): RpcFault | null {
    const reserved = this.#reserved;
    this.#reserved = 0;
    const fault = this.#tooLarge(size);
    if (fault) {
      this.request.cancel(reserved);
      return fault;
    }
    return this.request.settle(size, reserved);
  }

  /** Gives back what was reserved (the entry answered with an error, or is a notification). */
  cancel(): void {
    this.request.cancel(this.#reserved);
    this.#reserved = 0;
  }

  #tooLarge(size: number): RpcFault | null {
    const limit = this.request.limits.maxResponseBytes;
    return size > limit ? RpcFault.of('RESPONSE_TOO_LARGE', { limit, size }) : null;
  }
}
