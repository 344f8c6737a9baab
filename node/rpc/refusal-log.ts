import type { RpcLogger } from './logger.js';

/**
 * Logs what the server refused over its limits, at most once per interval with
 * the counts since the last line: a client flooding the node must not flood
 * its log too.
 */
export class RefusalLog {
  #counts: Record<string, number> = {};
  #lastLogAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly logger: RpcLogger,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Counts one refusal of `kind` (e.g. 'connections per client') from `client`. */
  note(kind: string, client: string): void {
    this.#counts[kind] = (this.#counts[kind] ?? 0) + 1;
    const now = this.now();
    if (now - this.#lastLogAt < this.intervalMs) return;
    const counts = this.#counts;
    this.#counts = {};
    this.#lastLogAt = now;
    try {
      this.logger.warn('JSON-RPC refused work over its limits', { refused: counts, lastClient: client });
    } catch {
      // A failing logger must not break the server.
    }
  }
}
