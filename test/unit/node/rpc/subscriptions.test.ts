import { describe, expect, it } from 'vitest';
import { RpcErrorCodes, RpcFault, SubscriptionHub, silentLogger } from '../../../../node/rpc/index.js';
import { FakeFeed, FakeSink } from './subscription-feed.js';

const LIMITS = { maxSubscriptionsPerSocket: 4, maxSocketBufferedBytes: 10_000, logger: silentLogger };

function setup(limits = LIMITS): { feed: FakeFeed; hub: SubscriptionHub } {
  const feed = new FakeFeed();
  return { feed, hub: new SubscriptionHub(feed, limits) };
}

/** The error a call throws (the test fails when it throws nothing). */
function faultOf(call: () => unknown): RpcFault {
  try {
    call();
  } catch (err) {
    if (err instanceof RpcFault) return err;
    throw err;
  }
  throw new Error('expected an RpcFault');
}

describe('SubscriptionHub', () => {
  it('delivers every block after the subscription, in height order, even when later blocks are read faster', async () => {
    const { feed, hub } = setup();
    feed.commit();
    feed.commit();
    const sink = new FakeSink();
    const session = hub.open(sink);
    const id = session.subscribe('newHeads', undefined);
    session.announce(id);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    // Block 3 takes longest to read, block 12 the least.
    feed.delayOf = (height) => Math.max(0, 30 - height * 2);
    for (let i = 0; i < 10; i++) feed.commit();
    await hub.settled();
    expect(sink.of(id).map((b) => (b as { height: number }).height)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('holds notifications until the subscribe answer is sent (announce)', async () => {
    const { feed, hub } = setup();
    const sink = new FakeSink();
    const session = hub.open(sink);
    const id = session.subscribe('newHeads', undefined);
    feed.commit();
    await hub.settled();
    expect(sink.sent).toEqual([]);
    session.announce(id);
    expect(sink.of(id)).toHaveLength(1);
  });

  it('filters receipts by the called contract and by tx hash, and events by contract and name', async () => {
    const { feed, hub } = setup();
    const sink = new FakeSink();
    const session = hub.open(sink);
    const subscribe = (kind: string, filter?: Record<string, unknown>): string => {
      const id = session.subscribe(kind, filter);
      session.announce(id);
      return id;
    };
    const all = subscribe('receipts');
    const tokenReceipts = subscribe('receipts', { contract: 'token' });
    const transfers = subscribe('events', { name: 'Transfer' });
    const counterEvents = subscribe('events', { contract: 'counter' });
    feed.commit([
      { contract: 'counter', events: [{ contract: 'counter', name: 'Incremented', data: { value: 1 } }] },
      {
        contract: 'token',
        events: [
          { contract: 'token', name: 'Minted', data: { amount: 5 } },
          { contract: 'token', name: 'Transfer', data: { amount: 2 } },
        ],
      },
    ]);
    await hub.settled();
    expect(sink.of(all).map((r) => (r as { index: number }).index)).toEqual([0, 1]);
    expect(sink.of(tokenReceipts)).toMatchObject([{ index: 1, blockHeight: 1 }]);
    expect(sink.of(transfers)).toEqual([
      { blockHeight: 1, blockHash: '1'.padStart(64, '0'), txHash: '1-1'.padEnd(64, 'a'), txIndex: 1, eventIndex: 1, contract: 'token', name: 'Transfer', data: { amount: 2 } },
    ]);
    expect(sink.of(counterEvents)).toMatchObject([{ name: 'Incremented', eventIndex: 0, txIndex: 0 }]);

    expect(session.unsubscribe(tokenReceipts)).toBe(true);
    expect(session.unsubscribe(tokenReceipts)).toBe(false);
    const byHash = subscribe('receipts', { txHash: '2-1'.padEnd(64, 'a') });
    feed.commit([{ contract: 'counter' }, { contract: 'counter' }]);
    await hub.settled();
    expect(sink.of(byHash)).toMatchObject([{ txHash: '2-1'.padEnd(64, 'a') }]);
    expect(sink.of(tokenReceipts)).toHaveLength(1);
  });

  it.each([
    ['logs', undefined, 'kind'],
    ['newHeads', { contract: 'counter' }, 'filter'],
    ['receipts', { name: 'Transfer' }, 'filter'],
    ['events', { txHash: 'ab' }, 'filter'],
    ['events', { name: 5 }, 'filter'],
  ])('refuses kind %s with filter %j as invalid params, creating nothing', (kind, filter, param) => {
    const { hub } = setup();
    const session = hub.open(new FakeSink());
    const fault = faultOf(() => session.subscribe(kind, filter as Record<string, unknown> | undefined));
    expect(fault.code).toBe(RpcErrorCodes.INVALID_PARAMS);
    expect(fault.data).toMatchObject({ param });
    expect(session.size).toBe(0);
  });

  it('refuses a subscription past maxSubscriptionsPerSocket', () => {
    const { hub } = setup();
    const session = hub.open(new FakeSink());
    for (let i = 0; i < LIMITS.maxSubscriptionsPerSocket; i++) session.subscribe('newHeads', undefined);
    const fault = faultOf(() => session.subscribe('newHeads', undefined));
    expect(fault.code).toBe(RpcErrorCodes.TOO_MANY_SUBSCRIPTIONS);
    expect(fault.data).toEqual({ limit: LIMITS.maxSubscriptionsPerSocket });
    // Another connection has its own allowance.
    expect(() => hub.open(new FakeSink()).subscribe('newHeads', undefined)).not.toThrow();
  });

  it('closes a consumer that takes nothing (1008) and drops its subscriptions, while another receives every block', async () => {
    const { feed, hub } = setup();
    const slow = new FakeSink();
    const fast = new FakeSink();
    const slowSession = hub.open(slow);
    const fastSession = hub.open(fast);
    const slowId = slowSession.subscribe('newHeads', undefined);
    const fastId = fastSession.subscribe('newHeads', undefined);
    slowSession.announce(slowId);
    fastSession.announce(fastId);
    slow.stalled = true;
    for (let i = 0; i < 40; i++) feed.commit();
    await hub.settled();
    expect(slow.closed).toEqual({ code: 1008, reason: expect.stringContaining('too slow') });
    expect(slowSession.size).toBe(0);
    expect(hub.subscriptions).toBe(1);
    const slowGot = slow.of(slowId).length;
    expect(slowGot).toBeLessThan(40);
    expect(fast.of(fastId).map((b) => (b as { height: number }).height)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    // Nothing more goes to the dropped one.
    feed.commit();
    await hub.settled();
    expect(slow.of(slowId)).toHaveLength(slowGot);
    expect(fast.of(fastId)).toHaveLength(41);
  });

  it('forgets a closed connection and stops following the chain when stopped', async () => {
    const { feed, hub } = setup();
    const sink = new FakeSink();
    const session = hub.open(sink);
    session.announce(session.subscribe('newHeads', undefined));
    session.close();
    expect(hub.subscriptions).toBe(0);
    feed.commit();
    await hub.settled();
    expect(sink.sent).toEqual([]);
    const other = new FakeSink();
    const s2 = hub.open(other);
    s2.announce(s2.subscribe('newHeads', undefined));
    hub.stop();
    feed.commit();
    await hub.settled();
    expect(other.sent).toEqual([]);
  });
});
