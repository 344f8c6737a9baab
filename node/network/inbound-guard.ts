/**
 * Bookkeeping for inbound connections that are not authenticated yet (TCP
 * accepted, Noise handshake not finished). libp2p's own limit is one global
 * count (`maxIncomingPendingConnections`, 10) that refuses newcomers once full,
 * plus a per-IP connection rate: a few idle sockets then lock every member out,
 * and on a devnet (everyone on 127.0.0.1) the attacker's connection rate is also
 * the members'. This guard replaces that policy:
 *
 *  - a newcomer is never refused because of old idle sockets: when a limit is
 *    reached, the pending connection least likely to be a member's is closed
 *    instead (from a host not among the configured peers' hosts first, then one
 *    that has sent no byte yet, then the oldest);
 *  - each host (an IPv4 address, an IPv6 /64) holds at most `maxPendingPerHost`,
 *    so a host only ever displaces its own connections, never another host's;
 *  - a pending connection that has started its handshake (sent bytes) is never
 *    displaced by one that has not: idle sockets cannot evict a member mid-handshake.
 *
 * Time limits are not kept here: libp2p closes a connection whose upgrade takes
 * longer than its inbound upgrade timeout.
 */

export interface PendingInbound {
  /** The remote IP address (see hostKey). */
  host: string;
  /** Bytes received on the socket so far (a member's dialer speaks first, within a round trip). */
  bytesReceived(): number;
  /** Closes the connection (it was displaced). */
  close(): void;
}

export interface InboundGuardLimits {
  /** Most unauthenticated inbound connections in total. */
  maxPending: number;
  /** Most unauthenticated inbound connections from one host. */
  maxPendingPerHost: number;
  /** Hosts of the configured peers (IP addresses): their connections are displaced last. */
  preferredHosts?: Iterable<string>;
}

export interface InboundGuardStats {
  pending: number;
  accepted: number;
  refused: number;
  displaced: number;
}

interface Entry {
  conn: PendingInbound;
  host: string;
  seq: number;
  preferred: boolean;
}

/**
 * The key a per-host limit counts under: an IPv4 address, or the /64 prefix of
 * an IPv6 address (one subscriber usually holds a whole /64). IPv4-mapped IPv6
 * addresses count as their IPv4 address.
 */
export function hostKey(ip: string): string {
  const lower = ip.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (mapped) return mapped[1]!;
  if (!lower.includes(':')) return lower;
  const [head = '', tail = ''] = lower.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = lower.includes('::') ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

export class InboundGuard {
  readonly #limits: InboundGuardLimits;
  readonly #preferred: Set<string>;
  readonly #pending = new Map<object, Entry>();
  readonly #perHost = new Map<string, number>();
  #seq = 0;
  #accepted = 0;
  #refused = 0;
  #displaced = 0;

  constructor(limits: InboundGuardLimits) {
    if (limits.maxPending < 1 || limits.maxPendingPerHost < 1) throw new RangeError('inbound limits must be at least 1');
    this.#limits = limits;
    this.#preferred = new Set([...(limits.preferredHosts ?? [])].map(hostKey));
  }

  /**
   * A new unauthenticated inbound connection. Returns true to go on with its
   * handshake (possibly after closing a displaced one), false to refuse it.
   */
  offer(key: object, conn: PendingInbound): boolean {
    const host = hostKey(conn.host);
    const entry: Entry = { conn, host, seq: this.#seq++, preferred: this.#preferred.has(host) };
    if ((this.#perHost.get(host) ?? 0) >= this.#limits.maxPendingPerHost) {
      if (!this.#makeRoom(entry, (e) => e.host === host)) return this.#refuse();
    }
    if (this.#pending.size >= this.#limits.maxPending) {
      if (!this.#makeRoom(entry, () => true)) return this.#refuse();
    }
    this.#pending.set(key, entry);
    this.#perHost.set(host, (this.#perHost.get(host) ?? 0) + 1);
    this.#accepted++;
    return true;
  }

  /** The connection authenticated, failed or closed: it no longer counts. Idempotent. */
  settle(key: object): void {
    const entry = this.#pending.get(key);
    if (!entry) return;
    this.#pending.delete(key);
    const left = (this.#perHost.get(entry.host) ?? 1) - 1;
    if (left > 0) this.#perHost.set(entry.host, left);
    else this.#perHost.delete(entry.host);
  }

  stats(): InboundGuardStats {
    return { pending: this.#pending.size, accepted: this.#accepted, refused: this.#refused, displaced: this.#displaced };
  }

  /** Closes the weakest pending connection among `among` if it is weaker than the newcomer; false if none is. */
  #makeRoom(newcomer: Entry, among: (e: Entry) => boolean): boolean {
    let victimKey: object | undefined;
    let victim: Entry | undefined;
    for (const [key, e] of this.#pending) {
      if (among(e) && (!victim || this.#weaker(e, victim))) {
        victim = e;
        victimKey = key;
      }
    }
    if (!victim || !victimKey || !this.#weaker(victim, newcomer)) return false;
    this.settle(victimKey);
    this.#displaced++;
    victim.conn.close();
    return true;
  }

  /** Is `a` a worse bet than `b` for being a member's connection? Outsiders' hosts, then silence, then age. */
  #weaker(a: Entry, b: Entry): boolean {
    if (a.preferred !== b.preferred) return !a.preferred;
    const aSpoke = a.conn.bytesReceived() > 0;
    const bSpoke = b.conn.bytesReceived() > 0;
    if (aSpoke !== bSpoke) return !aSpoke;
    return a.seq < b.seq;
  }

  #refuse(): false {
    this.#refused++;
    return false;
  }
}
