import { describe, expect, it } from 'vitest';
import { InboundGuard, hostKey, type PendingInbound } from '../../../../node/network/index.js';

/** A pending connection whose received byte count the test sets. */
class FakeConn implements PendingInbound {
  closed = false;
  bytes = 0;
  constructor(readonly host: string) {}
  bytesReceived(): number {
    return this.bytes;
  }
  close(): void {
    this.closed = true;
  }
}

function offerAll(guard: InboundGuard, conns: FakeConn[]): boolean[] {
  return conns.map((c) => guard.offer(c, c));
}

describe('inbound guard', () => {
  it('a newcomer displaces the oldest silent connection of its host instead of being refused', () => {
    const guard = new InboundGuard({ maxPending: 100, maxPendingPerHost: 3 });
    const idle = Array.from({ length: 40 }, () => new FakeConn('10.0.0.9'));
    expect(offerAll(guard, idle).every(Boolean)).toBe(true);
    // Only the 3 newest stay; each newcomer closed the oldest.
    expect(idle.filter((c) => !c.closed)).toEqual(idle.slice(-3));
    expect(guard.stats()).toEqual({ pending: 3, accepted: 40, refused: 0, displaced: 37 });
    const member = new FakeConn('10.0.0.9');
    expect(guard.offer(member, member)).toBe(true);
    expect(idle[37]!.closed).toBe(true);
  });

  it('a host only ever displaces its own connections', () => {
    const guard = new InboundGuard({ maxPending: 100, maxPendingPerHost: 2 });
    const member = new FakeConn('10.0.0.1');
    guard.offer(member, member);
    offerAll(guard, Array.from({ length: 50 }, () => new FakeConn('10.0.0.9')));
    expect(member.closed).toBe(false);
    expect(guard.stats().pending).toBe(3);
  });

  it('a connection that has started its handshake is not displaced by a silent newcomer; the newcomer is refused', () => {
    const guard = new InboundGuard({ maxPending: 100, maxPendingPerHost: 2 });
    const [a, b] = [new FakeConn('127.0.0.1'), new FakeConn('127.0.0.1')];
    offerAll(guard, [a, b]);
    a.bytes = 33; // a member's dialer speaks first (multistream-select, then Noise)
    const idle = new FakeConn('127.0.0.1');
    expect(guard.offer(idle, idle)).toBe(true); // displaces b (silent), not a
    expect([a.closed, b.closed]).toEqual([false, true]);
    idle.bytes = 1;
    const late = new FakeConn('127.0.0.1');
    expect(guard.offer(late, late)).toBe(false); // both pending have spoken: the silent newcomer waits its turn
    expect(guard.stats().refused).toBe(1);
  });

  it('when the total is reached, connections from hosts other than the configured peers go first', () => {
    const guard = new InboundGuard({ maxPending: 3, maxPendingPerHost: 3, preferredHosts: ['192.0.2.7'] });
    const peer = new FakeConn('192.0.2.7');
    const outsiders = [new FakeConn('198.51.100.1'), new FakeConn('198.51.100.2')];
    offerAll(guard, [peer, ...outsiders]);
    const next = new FakeConn('198.51.100.3');
    expect(guard.offer(next, next)).toBe(true);
    expect(peer.closed).toBe(false);
    expect(outsiders[0]!.closed).toBe(true);
    // A configured peer's host fills the rest; an outsider can no longer get in.
    const peers = [new FakeConn('192.0.2.7'), new FakeConn('192.0.2.7')];
    expect(offerAll(guard, peers)).toEqual([true, true]);
    const outsider = new FakeConn('198.51.100.4');
    expect(guard.offer(outsider, outsider)).toBe(false);
    expect([peer, ...peers].some((c) => c.closed)).toBe(false);
  });

  it('settled connections stop counting (authenticated or closed); settle is idempotent', () => {
    const guard = new InboundGuard({ maxPending: 2, maxPendingPerHost: 2 });
    const [a, b] = [new FakeConn('127.0.0.1'), new FakeConn('127.0.0.1')];
    offerAll(guard, [a, b]);
    guard.settle(a);
    guard.settle(a);
    const c = new FakeConn('127.0.0.1');
    expect(guard.offer(c, c)).toBe(true);
    expect(b.closed).toBe(false);
    expect(guard.stats().pending).toBe(2);
  });

  it('counts an IPv6 /64 as one host and an IPv4-mapped address as its IPv4 address', () => {
    expect(hostKey('2001:db8:1:2:a:b:c:d')).toBe('2001:db8:1:2::/64');
    expect(hostKey('2001:db8:1:2::ffff')).toBe('2001:db8:1:2::/64');
    expect(hostKey('2001:DB8:0001:0002::1')).toBe('2001:db8:1:2::/64');
    expect(hostKey('::1')).toBe('0:0:0:0::/64');
    expect(hostKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(hostKey('10.1.2.3')).toBe('10.1.2.3');
    const guard = new InboundGuard({ maxPending: 100, maxPendingPerHost: 1 });
    const [a, b] = [new FakeConn('2001:db8:1:2::1'), new FakeConn('2001:db8:1:2::2')];
    offerAll(guard, [a, b]);
    expect(a.closed).toBe(true);
  });
});
