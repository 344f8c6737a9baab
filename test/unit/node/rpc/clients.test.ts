import { describe, expect, it } from 'vitest';
import { ClientTracker, clientKey } from '../../../../node/rpc/index.js';

describe('clientKey', () => {
  it('is the IPv4 address, also when IPv4-mapped', () => {
    expect(clientKey('10.1.2.3')).toBe('10.1.2.3');
    expect(clientKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(clientKey('::FFFF:127.0.0.1')).toBe('127.0.0.1');
  });

  it('is the /64 of an IPv6 address, however it is written', () => {
    const key = '2001:db8:0:1::/64';
    for (const address of ['2001:db8:0:1::1', '2001:0db8:0000:0001:ffff:ffff:ffff:ffff', '2001:DB8:0:1:0:0:0:2', '2001:db8::1:0:0:0:3', '2001:db8:0:1::5%eth0']) {
      expect(clientKey(address), address).toBe(key);
    }
    expect(clientKey('2001:db8:0:2::1')).toBe('2001:db8:0:2::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('1::2:3:4:5:6.7.8.9')).toBe('1:0:2:3::/64');
  });

  it('keeps what is not an IP address, and names a missing one', () => {
    expect(clientKey(undefined)).toBe('unknown');
    expect(clientKey('/tmp/rpc.sock')).toBe('/tmp/rpc.sock');
  });
});

describe('ClientTracker', () => {
  it('counts per client and in all, and refuses past the limits without counting', () => {
    const tracker = new ClientTracker({ maxConnectionsPerClient: 2, maxRequestsPerClient: 1, maxRequestsInFlight: 2, maxWebSockets: 1 });
    expect([tracker.openConnection('a'), tracker.openConnection('a'), tracker.openConnection('a')]).toEqual([true, true, false]);
    expect(tracker.openConnection('b')).toBe(true);
    expect(tracker.connections).toBe(3);
    expect([tracker.startRequest('a'), tracker.startRequest('a')]).toEqual([null, 'TOO_MANY_REQUESTS']);
    expect([tracker.startRequest('b'), tracker.startRequest('c')]).toEqual([null, 'SERVER_BUSY']);
    expect(tracker.requestsInFlight).toBe(2);
    tracker.endRequest('a');
    tracker.endRequest('a'); // one too many: ignored
    expect(tracker.requestsInFlight).toBe(1);
    tracker.closeConnection('a');
    tracker.closeConnection('a');
    expect(tracker.of('a')).toEqual({ connections: 0, requests: 0, webSockets: 0 });
    tracker.closeConnection('b');
    tracker.endRequest('b');
    expect(tracker).toMatchObject({ connections: 0, requestsInFlight: 0 });
  });

  it('bounds WebSockets in all: past maxWebSockets nothing is counted, and a closed one makes room (closing twice frees one)', () => {
    const tracker = new ClientTracker({ maxConnectionsPerClient: 4, maxRequestsPerClient: 1, maxRequestsInFlight: 1, maxWebSockets: 2 });
    expect([tracker.openWebSocket('a'), tracker.openWebSocket('b'), tracker.openWebSocket('a')]).toEqual([true, true, false]);
    expect(tracker.webSockets).toBe(2);
    expect(tracker.of('a').webSockets).toBe(1);
    tracker.closeWebSocket('b');
    tracker.closeWebSocket('b'); // one too many: ignored
    expect(tracker.webSockets).toBe(1);
    expect(tracker.openWebSocket('c')).toBe(true);
    expect(tracker.openWebSocket('d')).toBe(false);
    tracker.closeWebSocket('a');
    tracker.closeWebSocket('c');
    expect(tracker.webSockets).toBe(0);
  });
});
