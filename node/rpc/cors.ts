import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';

export interface CorsOptions {
  /** Exact origins ("https://app.example"), or "*" for any origin. */
  allowedOrigins: readonly string[];
  /** How long browsers may cache a preflight answer; default 600. */
  maxAgeSeconds?: number;
}

/**
 * CORS is off unless configured: then no Access-Control-* header is ever sent.
 * When configured, only requests whose Origin is allowed get them.
 */
export class CorsPolicy {
  readonly #origins: ReadonlySet<string>;
  readonly #any: boolean;
  readonly #maxAge: number;

  constructor(options: CorsOptions | undefined) {
    this.#origins = new Set(options?.allowedOrigins ?? []);
    this.#any = this.#origins.has('*');
    this.#maxAge = options?.maxAgeSeconds ?? 600;
  }

  get enabled(): boolean {
    return this.#origins.size > 0;
  }

  /** True when `origin` may call from a browser (a WebSocket has no preflight: the server checks its Origin itself). */
  allows(origin: string): boolean {
    return this.#any || this.#origins.has(origin);
  }

  /** Headers for an actual (non-preflight) response. */
  headers(req: IncomingMessage): OutgoingHttpHeaders {
    if (!this.enabled) return {};
    const origin = req.headers.origin;
    const vary = { Vary: 'Origin' };
    if (origin === undefined || !(this.#any || this.#origins.has(origin))) return vary;
    return { ...vary, 'Access-Control-Allow-Origin': this.#any ? '*' : origin };
  }

  /** Headers for a preflight (OPTIONS) answer; only allowed origins get the Allow-* headers. */
  preflightHeaders(req: IncomingMessage): OutgoingHttpHeaders {
    const base = this.headers(req);
    if (!('Access-Control-Allow-Origin' in base)) return base;
    return {
      ...base,
      'Access-Control-Allow-Methods': 'POST, GET, OPTIONS',
      'Access-Control-Allow-Headers': 'Content-Type',
      'Access-Control-Max-Age': String(this.#maxAge),
    };
  }
}
