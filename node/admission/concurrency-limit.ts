/**
 * Runs at most `maxRunning` tasks at once and queues at most `maxQueued` more;
 * `run` refuses (returns undefined without calling `task`) when the queue is full.
 */
export class ConcurrencyLimit {
  #running = 0;
  readonly #queue: (() => void)[] = [];

  constructor(
    private readonly maxRunning: number,
    private readonly maxQueued: number,
  ) {
    if (maxRunning < 1 || maxQueued < 0) throw new RangeError('maxRunning must be ≥ 1 and maxQueued ≥ 0');
  }

  /** The task's result, or undefined when the limit refused it. A task's rejection is passed on. */
  async run<T>(task: () => Promise<T>): Promise<{ value: T } | undefined> {
    if (this.#running >= this.maxRunning) {
      if (this.#queue.length >= this.maxQueued) return undefined;
      await new Promise<void>((resolve) => this.#queue.push(resolve));
    } else {
      this.#running++;
    }
    try {
      return { value: await task() };
    } finally {
      // Hand the slot straight to the next waiter (the running count stays the same), else free it.
      const next = this.#queue.shift();
      if (next) next();
      else this.#running--;
    }
  }

  get running(): number {
    return this.#running;
  }

  get queued(): number {
    return this.#queue.length;
  }
}
