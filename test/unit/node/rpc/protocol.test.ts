import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcErrorCodes } from '../../../../node/rpc/index.js';
import { h, post, rpc, startServer, TX, type Harness } from './fixtures.js';

let t: Harness;
beforeAll(async () => {
  t = await startServer({ maxBatchSize: 5 });
});
afterAll(async () => {
  await t.server.stop();
});

describe('JSON-RPC 2.0 envelope', () => {
  it('answers a single call with result and the same id', async () => {
    const reply = await rpc(t.url, { jsonrpc: '2.0', id: 'abc', method: 'chain_blockNumber' });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(reply.json).toEqual({ jsonrpc: '2.0', id: 'abc', result: 1 });
  });

  it('-32700 parse error with id null for garbage JSON', async () => {
    const reply = await post(t.url, '{"jsonrpc": "2.0", "method": "foo", "params": "bar", "baz]');
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
  });

  it('-32700 for invalid UTF-8 and for raw binary', async () => {
    const invalidUtf8 = Uint8Array.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]);
    expect((await post(t.url, invalidUtf8)).json).toMatchObject({ id: null, error: { code: -32700 } });
    const garbage = Uint8Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) % 256);
    expect((await post(t.url, garbage)).json).toMatchObject({ id: null, error: { code: -32700 } });
    expect((await post(t.url, '')).json).toMatchObject({ id: null, error: { code: -32700 } });
  });

  it.each([
    ['a number', 1],
    ['a string', 'x'],
    ['no jsonrpc', { id: 1, method: 'chain_blockNumber' }],
    ['jsonrpc 1.0', { jsonrpc: '1.0', id: 1, method: 'chain_blockNumber' }],
    ['method not a string', { jsonrpc: '2.0', id: 1, method: 1 }],
    ['params a string', { jsonrpc: '2.0', id: 1, method: 'chain_blockNumber', params: 'bar' }],
    ['params null', { jsonrpc: '2.0', id: 1, method: 'chain_blockNumber', params: null }],
  ])('-32600 invalid request: %s', async (_name, payload) => {
    const reply = await rpc(t.url, payload);
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({ jsonrpc: '2.0', error: { code: -32600, message: 'Invalid Request' } });
  });

  it('-32600 keeps a usable id and uses null for an unusable one', async () => {
    expect((await rpc(t.url, { jsonrpc: '1.0', id: 7, method: 'x' })).json).toMatchObject({ id: 7 });
    expect((await rpc(t.url, { jsonrpc: '2.0', id: { a: 1 }, method: 'x' })).json).toMatchObject({
      id: null,
      error: { code: -32600 },
    });
    // 1e400 parses to Infinity: not a usable id.
    expect((await post(t.url, '{"jsonrpc":"2.0","id":1e400,"method":"chain_blockNumber"}')).json).toMatchObject({
      id: null,
      error: { code: -32600 },
    });
  });

  it('-32601 method not found, including reserved and prototype names', async () => {
    for (const method of ['nope', 'rpc.other', '__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      const reply = await rpc(t.url, { jsonrpc: '2.0', id: 1, method });
      expect(reply.json).toEqual({ jsonrpc: '2.0', id: 1, error: { code: -32601, message: 'Method not found' } });
    }
  });

  it('notifications get no response: HTTP 204 with an empty body', async () => {
    const reply = await rpc(t.url, { jsonrpc: '2.0', method: 'chain_sendTransaction', params: [TX] });
    expect(reply.status).toBe(204);
    expect(reply.text).toBe('');
    expect(t.api.calls.at(-1)?.method).toBe('sendTransaction');
    // Even a failing notification stays silent.
    expect((await rpc(t.url, { jsonrpc: '2.0', method: 'nope' })).status).toBe(204);
  });

  it('rejects nesting deeper than the limit without recursion trouble', async () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expect((await post(t.url, deep)).json).toMatchObject({ id: null, error: { code: -32600 } });
    const args = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'chain_call', params: ['c', 'm', JSON.parse('['.repeat(500) + ']'.repeat(500))] });
    expect((await post(t.url, args)).json).toMatchObject({ id: null, error: { code: -32600 } });
  });

  it('huge numbers are INVALID_ARGS, not a crash', async () => {
    const reply = await post(t.url, '{"jsonrpc":"2.0","id":1,"method":"chain_getBlockByNumber","params":[1e400]}');
    expect(reply.json).toMatchObject({
      id: 1,
      error: { code: RpcErrorCodes.INVALID_ARGS, data: { code: 'INVALID_ARGS', param: 'height', reason: '1e400 would be read as Infinity' } },
    });
    const big = await post(t.url, '{"jsonrpc":"2.0","id":2,"method":"chain_getBlockByNumber","params":[123456789012345678901234567890]}');
    expect(big.json).toMatchObject({ id: 2, error: { code: RpcErrorCodes.INVALID_ARGS } });
  });
});

describe('batches', () => {
  it('answers mixed valid, invalid and notification entries in request order', async () => {
    const reply = await rpc(t.url, [
      { jsonrpc: '2.0', id: 1, method: 'chain_blockNumber' },
      { jsonrpc: '2.0', method: 'chain_blockNumber' },
      { jsonrpc: '2.0', id: 2, method: 'nope' },
      1,
      { jsonrpc: '2.0', id: 3, method: 'chain_getNonce', params: { address: h('a') } },
    ]);
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual([
      { jsonrpc: '2.0', id: 1, result: 1 },
      { jsonrpc: '2.0', id: 2, error: { code: -32601, message: 'Method not found' } },
      { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid Request', data: { reason: 'request must be an object' } } },
      { jsonrpc: '2.0', id: 3, result: 3 },
    ]);
  });

  it('keeps request order although later entries finish first, and invokes handlers in order', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = await startServer();
    const original = slow.api.getNonce.bind(slow.api);
    slow.api.getNonce = async (address: string) => {
      await gate;
      return original(address);
    };
    const order: number[] = [];
    slow.api.sendTransaction = async (tx: unknown) => {
      order.push((tx as { nonce: number }).nonce);
      if (order.length === 3) release();
      return h(String((tx as { nonce: number }).nonce));
    };
    try {
      const reply = await rpc(slow.url, [
        { jsonrpc: '2.0', id: 'n', method: 'chain_getNonce', params: [h('a')] },
        ...[0, 1, 2].map((nonce) => ({ jsonrpc: '2.0', id: nonce, method: 'chain_sendTransaction', params: [{ ...TX, nonce }] })),
      ]);
      expect(order).toEqual([0, 1, 2]);
      expect((reply.json as { id: unknown }[]).map((r) => r.id)).toEqual(['n', 0, 1, 2]);
    } finally {
      await slow.server.stop();
    }
  });

  it('empty batch is one -32600 error', async () => {
    const reply = await rpc(t.url, []);
    expect(reply.json).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid Request', data: { reason: 'empty batch' } } });
  });

  it('a batch of invalid entries answers each', async () => {
    expect(await rpc(t.url, [1, 2, 3]).then((r) => r.json)).toHaveLength(3);
  });

  it('a batch of only notifications is HTTP 204 with an empty body', async () => {
    const reply = await rpc(t.url, [
      { jsonrpc: '2.0', method: 'chain_blockNumber' },
      { jsonrpc: '2.0', method: 'nope' },
    ]);
    expect(reply.status).toBe(204);
    expect(reply.text).toBe('');
  });

  it('a batch over maxBatchSize is one error', async () => {
    const reply = await rpc(t.url, Array.from({ length: 6 }, (_, id) => ({ jsonrpc: '2.0', id, method: 'chain_blockNumber' })));
    expect(reply.json).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: RpcErrorCodes.BATCH_TOO_LARGE, message: 'Batch too large', data: { limit: 5, size: 6 } },
    });
  });
});

describe('params', () => {
  const call = (method: string, params?: unknown, id: unknown = 1) =>
    rpc(t.url, params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params });

  it('accepts positional and named params alike', async () => {
    const byPosition = await call('chain_getBlockByNumber', [1, true]);
    const byName = await call('chain_getBlockByNumber', { height: 1, fullTransactions: true });
    expect(byPosition.json).toEqual(byName.json);
    expect((byPosition.json as { result: { transactions: unknown[] } }).result.transactions[0]).toMatchObject({ hash: h('c') });
    expect(t.api.calls.filter((c) => c.method === 'getBlockByNumber').slice(-2)).toEqual([
      { method: 'getBlockByNumber', args: [1, true] },
      { method: 'getBlockByNumber', args: [1, true] },
    ]);
  });

  it('optional params default, and "latest" resolves to the head', async () => {
    await call('chain_getBlockByNumber', ['latest']);
    expect(t.api.calls.at(-1)).toEqual({ method: 'getBlockByNumber', args: [1, false] });
    await call('chain_call', { contract: 'counter', method: 'get', args: [] });
    expect(t.api.calls.at(-1)).toEqual({ method: 'call', args: ['counter', 'get', [], undefined] });
    await call('chain_call', ['counter', 'get', [1], null]);
    expect(t.api.calls.at(-1)).toEqual({ method: 'call', args: ['counter', 'get', [1], undefined] });
    const auth = { caller: h('a'), expiresAt: 5, signature: 'ab'.repeat(64) };
    await call('chain_call', ['counter', 'get', [1], auth]);
    expect(t.api.calls.at(-1)).toEqual({ method: 'call', args: ['counter', 'get', [1], auth] });
  });

  it.each([
    ['missing required', 'chain_getTransaction', [], { param: 'hash', reason: 'required' }],
    ['missing by name', 'chain_getTransaction', {}, { param: 'hash', reason: 'required' }],
    ['upper-case hex', 'chain_getTransaction', ['A'.repeat(64)], { param: 'hash' }],
    ['short hex', 'chain_getNonce', ['ab'], { param: 'address' }],
    ['wrong type', 'chain_getBlockByNumber', [1, 'yes'], { param: 'fullTransactions' }],
    ['negative height', 'chain_getBlockByNumber', [-1], { param: 'height' }],
    ['too many', 'chain_blockNumber', [1], { reason: 'expected at most 0 params, got 1' }],
    ['unknown name', 'chain_getNonce', { address: h('a'), extra: 1 }, { param: 'extra', reason: 'unknown parameter' }],
    ['tx not an object', 'chain_sendTransaction', ['tx'], { param: 'tx' }],
    ['tx bad field', 'chain_sendTransaction', [{ ...TX, nonce: -1 }], { param: 'tx', path: '/nonce' }],
    ['tx extra field', 'chain_sendTransaction', [{ ...TX, extra: 1 }], { param: 'tx', reason: 'must not have property "extra"' }],
    ['args not an array', 'chain_call', ['counter', 'get', {}], { param: 'args' }],
  ])('-32602 with data naming the problem: %s', async (_name, method, params, data) => {
    const before = t.api.calls.length;
    const reply = await call(method, params);
    expect(reply.json).toMatchObject({ jsonrpc: '2.0', id: 1, error: { code: -32602, message: 'Invalid params', data } });
    expect(t.api.calls.length).toBe(before); // never reached the ChainApi
  });

  it('__proto__ keys do not pollute or bypass validation', async () => {
    const named = await post(t.url, '{"jsonrpc":"2.0","id":1,"method":"chain_getNonce","params":{"__proto__":{"address":"' + h('a') + '"}}}');
    expect(named.json).toMatchObject({ id: 1, error: { code: -32602, data: { param: '__proto__', reason: 'unknown parameter' } } });
    const inTx = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'chain_sendTransaction', params: [TX] }).replace(
      '"chainId"',
      '"__proto__":{"polluted":true},"chainId"',
    );
    expect((await post(t.url, inTx)).json).toMatchObject({ id: 2, error: { code: -32602, data: { param: 'tx' } } });
    const request = '{"__proto__":{"jsonrpc":"2.0"},"id":3,"method":"chain_blockNumber"}';
    expect((await post(t.url, request)).json).toMatchObject({ id: 3, error: { code: -32600 } });
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});
