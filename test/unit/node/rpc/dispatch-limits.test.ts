import { describe, expect, it } from 'vitest';
import {
  BytePool,
  Dispatcher,
  MethodTable,
  RpcErrorCodes,
  defineMethod,
  replyText,
  type CallContext,
  type DispatcherOptions,
  type RpcMethod,
} from '../../../../node/rpc/index.js';
import { MemoryLogger } from './fixtures.js';

/** Resolves when released; counts how many are held at once. */
class Gate {
  running = 0;
  most = 0;
  started: number[] = [];
  #waiting: (() => void)[] = [];

  async pass(n: number): Promise<number> {
    this.started.push(n);
    this.running++;
    this.most = Math.max(this.most, this.running);
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.running--;
    return n;
  }

  /** Releases everything waiting now and later, until all `count` have passed. */
  async drain(count: number): Promise<void> {
    while (this.started.length < count || this.running > 0) {
      this.#waiting.splice(0).forEach((release) => release());
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

/** A method whose calls wait at the gate, then answer their `n`. */
function gated(gate: Gate, name: string, concurrency?: RpcMethod['concurrency']): RpcMethod {
  return defineMethod({
    name,
    summary: 'waits for the gate',
    params: [{ name: 'n', schema: { type: 'integer' } }],
    result: { name: 'n', schema: { type: 'integer' } },
    ...(concurrency ? { concurrency } : {}),
    handler: (n: number) => gate.pass(n),
  });
}

function setup(methods: RpcMethod[], options: Partial<DispatcherOptions> = {}): Dispatcher {
  return new Dispatcher(new MethodTable(methods), {
    maxBatchSize: 2000,
    maxDepth: 128,
    batchConcurrency: 4,
    maxResponseBytes: 1000,
    maxBatchResponseBytes: 3000,
    logger: new MemoryLogger(),
    ...options,
  });
}

const call = (method: string, params: unknown[] = [], id: number | string = 1) => ({ jsonrpc: '2.0', id, method, params });

/** A method returning a string of `size` characters. */
const text = defineMethod({
  name: 'test_text',
  summary: 'a string of the given size',
  params: [{ name: 'size', schema: { type: 'integer' } }],
  result: { name: 'text', schema: { type: 'string' } },
  handler: (size: number) => 'x'.repeat(size),
});

interface Replied {
  id: unknown;
  result?: unknown;
  error?: { code: number; data?: unknown };
}

async function answer(dispatcher: Dispatcher, payload: unknown, options?: Parameters<Dispatcher['handlePayload']>[1]): Promise<Replied[]> {
  const reply = await dispatcher.handlePayload(payload, options);
  if (reply === null) return [];
  const body = JSON.parse(replyText(reply)) as Replied | Replied[];
  expect(Buffer.byteLength(replyText(reply))).toBe(reply.bytes);
  return Array.isArray(body) ? body : [body];
}

describe('batch concurrency', () => {
  it('runs at most batchConcurrency entries at once, starts them in request order, answers in request order', async () => {
    const gate = new Gate();
    const slow = gated(gate, 'test_slow');
    const dispatcher = setup([slow], { batchConcurrency: 3 });
    const pending = answer(dispatcher, Array.from({ length: 10 }, (_, n) => call('test_slow', [n], n)));
    // The first three start at once, synchronously, in request order.
    expect(gate.started).toEqual([0, 1, 2]);
    await gate.drain(10);
    const replies = await pending;
    expect(gate.most).toBe(3);
    expect(gate.started).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(replies.map((r) => [r.id, r.result])).toEqual(Array.from({ length: 10 }, (_, n) => [n, n]));
  });

  it('skips the entries not started yet once the client is gone', async () => {
    const gate = new Gate();
    const slow = gated(gate, 'test_slow');
    const dispatcher = setup([slow], { batchConcurrency: 2 });
    const signal = { aborted: false };
    const pending = answer(dispatcher, Array.from({ length: 10 }, (_, n) => call('test_slow', [n], n)), { signal });
    signal.aborted = true;
    await gate.drain(2);
    await pending;
    expect(gate.started).toEqual([0, 1]);
  });
});

describe('response bytes', () => {
  it('a response over maxResponseBytes is RESPONSE_TOO_LARGE; the rest of the batch answers', async () => {
    const dispatcher = setup([text]);
    const replies = await answer(dispatcher, [call('test_text', [100], 1), call('test_text', [5000], 2), call('test_text', [10], 3)]);
    expect(replies[0]).toMatchObject({ id: 1, result: 'x'.repeat(100) });
    expect(replies[1]).toEqual({
      jsonrpc: '2.0',
      id: 2,
      error: { code: RpcErrorCodes.RESPONSE_TOO_LARGE, message: 'Response too large', data: { limit: 1000, size: 5036 } },
    });
    expect(replies[2]).toMatchObject({ id: 3, result: 'x'.repeat(10) });
  });

  it('entries past maxBatchResponseBytes get BATCH_BUDGET_EXCEEDED; smaller ones that still fit answer', async () => {
    const dispatcher = setup([text], { batchConcurrency: 1 });
    const replies = await answer(dispatcher, [
      ...Array.from({ length: 4 }, (_, i) => call('test_text', [900], i)),
      call('test_text', [100], 'small'),
    ]);
    expect(replies.slice(0, 3).every((r) => r.result === 'x'.repeat(900))).toBe(true);
    expect(replies[3]).toMatchObject({ id: 3, error: { code: RpcErrorCodes.BATCH_BUDGET_EXCEEDED, data: { limit: 3000 } } });
    expect(replies[4]).toMatchObject({ id: 'small', result: 'x'.repeat(100) });
  });

  it('a handler reserves before it works: refused work is never done, and a reservation settles to the real size', async () => {
    let worked = 0;
    const reserving = defineMethod({
      name: 'test_reserving',
      summary: 'reserves, then builds a result',
      params: [
        { name: 'reserve', schema: { type: 'integer' } },
        { name: 'size', schema: { type: 'integer' } },
      ],
      result: { name: 'text', schema: { type: 'string' } },
      handler: async (reserve: number, size: number, context: CallContext) => {
        await context.reserve(reserve);
        worked++;
        return 'y'.repeat(size);
      },
    });
    const dispatcher = setup([reserving], { batchConcurrency: 1 });
    const replies = await answer(dispatcher, [
      call('test_reserving', [1001, 10], 'over one'),
      // Reserves 900 but sends about 50: the next entries still fit.
      ...Array.from({ length: 5 }, (_, i) => call('test_reserving', [900, 10], i)),
    ]);
    expect(replies[0]).toMatchObject({ error: { code: RpcErrorCodes.RESPONSE_TOO_LARGE, data: { limit: 1000, size: 1001 } } });
    expect(replies.slice(1).every((r) => r.result === 'y'.repeat(10))).toBe(true);
    expect(worked).toBe(5);
  });

  it("entries whose reservations do not fit beside other entries' wait for those to settle, so only real bytes refuse them", async () => {
    let building = 0;
    let most = 0;
    const reserving = defineMethod({
      name: 'test_reserving',
      summary: 'reserves 900 bytes, builds a small result',
      params: [],
      result: { name: 'text', schema: { type: 'string' } },
      handler: async (context: CallContext) => {
        await context.reserve(900);
        most = Math.max(most, ++building);
        await new Promise((resolve) => setImmediate(resolve));
        building--;
        return 'y'.repeat(10);
      },
    });
    const dispatcher = setup([reserving], { batchConcurrency: 20 });
    const replies = await answer(dispatcher, Array.from({ length: 20 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'test_reserving' })));
    expect(replies.every((r) => r.result === 'y'.repeat(10))).toBe(true);
    // Never more reserved at once than the batch may send: 3 × 900 ≤ 3000.
    expect(most).toBe(3);
  });

  it('notifications are charged as if answered, so a batch of them cannot build results without end', async () => {
    let built = 0;
    const reserving = defineMethod({
      name: 'test_reserving',
      summary: 'reserves 900 bytes, builds a result of 800',
      params: [],
      result: { name: 'text', schema: { type: 'string' } },
      handler: async (context: CallContext) => {
        await context.reserve(900);
        built++;
        return 'y'.repeat(800);
      },
    });
    const dispatcher = setup([reserving], { batchConcurrency: 1 });
    const reply = await dispatcher.handlePayload(Array.from({ length: 20 }, () => ({ jsonrpc: '2.0', method: 'test_reserving' })));
    expect(reply).toBeNull();
    // 3000 bytes hold three 800-byte results; the fourth has room for 900 reserved no more.
    expect(built).toBe(3);
  });

  it('results are charged to the server pool too: past it SERVER_BUSY, and closing the lease gives everything back', async () => {
    const pool = new BytePool(300);
    const lease = pool.lease();
    const dispatcher = setup([text], { batchConcurrency: 1 });
    const replies = await answer(dispatcher, [call('test_text', [100], 1), call('test_text', [100], 2), call('test_text', [100], 3)], { lease });
    expect(replies.map((r) => r.result ?? r.error?.code)).toEqual(['x'.repeat(100), 'x'.repeat(100), RpcErrorCodes.SERVER_BUSY]);
    expect(pool.used).toBeGreaterThan(200);
    lease.close();
    expect(pool.used).toBe(0);
    expect(lease.tryTake(1)).toBe(false);
  });

  it('a single call refused for lack of room is HTTP 503', async () => {
    const pool = new BytePool(50);
    const reply = await setup([text]).handlePayload(call('test_text', [100]), { lease: pool.lease() });
    expect(reply?.status).toBe(503);
    expect(JSON.parse(replyText(reply!))).toMatchObject({ error: { code: RpcErrorCodes.SERVER_BUSY } });
  });
});

describe('method concurrency', () => {
  it('at most maxInFlight calls of a method run at once across requests; past maxWaiting, SERVER_BUSY', async () => {
    const gate = new Gate();
    const exclusive = gated(gate, 'test_exclusive', { maxInFlight: 1, maxWaiting: 2 });
    const dispatcher = setup([exclusive], { batchConcurrency: 10 });
    const first = answer(dispatcher, [0, 1, 2, 3].map((n) => call('test_exclusive', [n], n)));
    const second = answer(dispatcher, call('test_exclusive', [9], 9));
    await gate.drain(3);
    const [batch, single] = await Promise.all([first, second]);
    expect(gate.most).toBe(1);
    expect(gate.started).toEqual([0, 1, 2]);
    expect(batch.map((r) => r.result ?? r.error?.code)).toEqual([0, 1, 2, RpcErrorCodes.SERVER_BUSY]);
    expect(single[0]?.error?.code).toBe(RpcErrorCodes.SERVER_BUSY);
  });
});
