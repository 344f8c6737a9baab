import type { OutgoingHttpHeaders } from 'node:http';

/** A file the RPC port serves on GET (the explorer page). */
export interface StaticPage {
  readonly contentType: string;
  readonly body: Buffer;
}

/**
 * The headers of a served page: scripts, styles and connections from the
 * node's own origin only (and its WebSocket), no framing, no sniffing. The
 * page renders attacker-controlled chain data; with no inline script allowed,
 * an injection that got past its textContent rendering still would not run.
 */
export const PAGE_HEADERS: OutgoingHttpHeaders = {
  'Content-Security-Policy': "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-cache',
};
