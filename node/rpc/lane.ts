import { RpcFault } from './errors.js';

/**
 * At most `maxInFlight` calls of one method run at once across the server; the
 * others wait in arrival order, at most `maxWaiting` of them (more are
 * SERVER_BUSY at once). For methods that take a resource the node cannot share
 * out, e.g. chain_call, which runs in the enclave: the enclave serves one ecall
 * at a time, so a batch of calls let through at once would queue ahead of the
 * next block's execution and stall consensus.
 */
export class Lane {
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(
    readonly name: string,
    readonly maxInFlight: number,
    readonly maxWaiting: number,
  ) {}

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /** Resolves with the function that gives the slot back (idempotent); rejects SERVER_BUSY when too many wait. */
  acquire(): Promise<() => void> {
    if (this.#running < this.maxInFlight) {
      this.#running++;
      return Promise.resolve(this.#releaser());
    }
    if (this.#waiting.length >= this.maxWaiting) {
      return Promise.reject(RpcFault.of('SERVER_BUSY', { reason: `too many ${this.name} calls waiting` }));
    }
    return new Promise((resolve) => this.#waiting.push(() => resolve(this.#releaser())));
  }

  /** Runs `work` in a slot (waiting for one first); rejects SERVER_BUSY when too many wait. */
  async run<T>(work: () => T | Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await work();
    } finally {
      release();
    }
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      // The slot passes straight to the next waiter, so `running` never drops below what is really running.
      if (next) next();
      else this.#running--;
    };
  }
}
