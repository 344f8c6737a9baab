import { isIPv4, isIPv6 } from 'node:net';
import type { RpcLimits } from './limits.js';

/**
 * The client a connection counts under: its IPv4 address, or the /64 prefix
 * of its IPv6 address (one host usually holds a whole /64, so counting single
 * IPv6 addresses would let one client open connections without end).
 */
export function clientKey(remoteAddress: string | undefined): string {
  if (remoteAddress === undefined) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remoteAddress);
  if (mapped) return mapped[1]!;
  if (isIPv4(remoteAddress) || !isIPv6(remoteAddress)) return remoteAddress;
  return `${expandIPv6(remoteAddress).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (a zone is dropped), as lowercase hex without leading zeros. */
function expandIPv6(address: string): string[] {
  const [plain = ''] = address.toLowerCase().split('%');
  const [head = '', tail] = plain.split('::');
  const left = groupsOf(head);
  const right = groupsOf(tail ?? '');
  const groups = tail === undefined ? left : [...left, ...new Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return groups.map((group) => Number.parseInt(group, 16).toString(16));
}

/** Colon-separated groups, with an embedded IPv4 address (the last 32 bits) as two groups. */
function groupsOf(part: string): string[] {
  if (part === '') return [];
  const groups = part.split(':');
  const last = groups.at(-1)!;
  if (!last.includes('.')) return groups;
  const [a = 0, b = 0, c = 0, d = 0] = last.split('.').map(Number);
  return [...groups.slice(0, -1), ((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
}

export type RequestRefusal = 'TOO_MANY_REQUESTS' | 'SERVER_BUSY';

interface ClientCounts {
  connections: number;
  requests: number;
  /** Of its connections, those upgraded to a WebSocket. */
  webSockets: number;
}

/**
 * Counts connections and requests in flight per client and in all, against the
 * limits. A client is forgotten once it has neither, so the map holds only
 * clients that are connected.
 */
export class ClientTracker {
  readonly #clients = new Map<string, ClientCounts>();
  #connections = 0;
  #requests = 0;
  #webSockets = 0;

  constructor(private readonly limits: Pick<RpcLimits, 'maxConnectionsPerClient' | 'maxRequestsPerClient' | 'maxRequestsInFlight' | 'maxWebSockets'>) {}

  /** Open WebSockets, all clients together. */
  get webSockets(): number {
    return this.#webSockets;
  }

  /**
   * Counts a connection of `key` becoming a WebSocket; false (nothing counted)
   * when maxWebSockets are open. It stays counted as a connection of its client
   * too, so maxConnectionsPerClient bounds a client's WebSockets.
   */
  openWebSocket(key: string): boolean {
    if (this.#webSockets >= this.limits.maxWebSockets) return false;
    this.#counts(key).webSockets++;
    this.#webSockets++;
    return true;
  }

  closeWebSocket(key: string): void {
    if (this.#release(key, 'webSockets')) this.#webSockets--;
  }

  /** Open connections, all clients together. */
  get connections(): number {
    return this.#connections;
  }

  /** Requests in flight, all clients together. */
  get requestsInFlight(): number {
    return this.#requests;
  }

  /** Counts a new connection; false (nothing counted) when its client already has as many as allowed. */
  openConnection(key: string): boolean {
    if (this.of(key).connections >= this.limits.maxConnectionsPerClient) return false;
    this.#counts(key).connections++;
    this.#connections++;
    return true;
  }

  closeConnection(key: string): void {
    if (this.#release(key, 'connections')) this.#connections--;
  }

  /** Counts a request about to be answered; null when admitted, else the limit it is over (nothing counted). */
  startRequest(key: string): RequestRefusal | null {
    if (this.of(key).requests >= this.limits.maxRequestsPerClient) return 'TOO_MANY_REQUESTS';
    if (this.#requests >= this.limits.maxRequestsInFlight) return 'SERVER_BUSY';
    this.#counts(key).requests++;
    this.#requests++;
    return null;
  }

  endRequest(key: string): void {
    if (this.#release(key, 'requests')) this.#requests--;
  }

  /** The counts of one client (zero when unknown), for tests and status. */
  of(key: string): Readonly<ClientCounts> {
    return this.#clients.get(key) ?? { connections: 0, requests: 0, webSockets: 0 };
  }

  #counts(key: string): ClientCounts {
    let counts = this.#clients.get(key);
    if (!counts) {
      counts = { connections: 0, requests: 0, webSockets: 0 };
      this.#clients.set(key, counts);
    }
    return counts;
  }

  /** Takes one off a client's count; false when there was none. A client with neither is forgotten. */
  #release(key: string, what: keyof ClientCounts): boolean {
    const counts = this.#clients.get(key);
    if (!counts || counts[what] === 0) return false;
    counts[what]--;
    if (counts.connections === 0 && counts.requests === 0 && counts.webSockets === 0) this.#clients.delete(key);
    return true;
  }
}
