import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChainError, type ChainErrorCode } from '../../../../consensus/index.js';
import {
  JsonRpcServer,
  RPC_ERRORS,
  RpcErrorCodes,
  RpcFault,
  chainCodeOf,
  chainMethods,
  defineMethod,
  type RpcErrorName,
} from '../../../../node/rpc/index.js';
import { FakeApi, MemoryLogger, TX, h, rpc, startServer, type Harness } from './fixtures.js';

const STANDARD = ['PARSE_ERROR', 'INVALID_REQUEST', 'METHOD_NOT_FOUND', 'INVALID_PARAMS', 'INTERNAL_ERROR'];
const SERVER = [
  'SERVER_ERROR',
  'REQUEST_TOO_LARGE',
  'BATCH_TOO_LARGE',
  'REQUEST_TIMEOUT',
  'TOO_MANY_REQUESTS',
  'SERVER_BUSY',
  'RESPONSE_TOO_LARGE',
  'BATCH_BUDGET_EXCEEDED',
  'WEBSOCKET_REQUIRED',
  'TOO_MANY_SUBSCRIPTIONS',
];
const CHAIN_CODES = Object.keys(RPC_ERRORS).filter((name) => !STANDARD.includes(name) && !SERVER.includes(name)) as ChainErrorCode[];

describe('the error table', () => {
  it('has the standard codes', () => {
    expect(RpcErrorCodes.PARSE_ERROR).toBe(-32700);
    expect(RpcErrorCodes.INVALID_REQUEST).toBe(-32600);
    expect(RpcErrorCodes.METHOD_NOT_FOUND).toBe(-32601);
    expect(RpcErrorCodes.INVALID_PARAMS).toBe(-32602);
    expect(RpcErrorCodes.INTERNAL_ERROR).toBe(-32603);
  });

  it('gives every other error its own code in -32000..-32099', () => {
    const codes = Object.values(RpcErrorCodes);
    expect(new Set(codes).size).toBe(codes.length);
    for (const [name, code] of Object.entries(RpcErrorCodes)) {
      if (!STANDARD.includes(name)) expect(code, name).toBeGreaterThanOrEqual(-32099);
      if (!STANDARD.includes(name)) expect(code, name).toBeLessThanOrEqual(-32000);
    }
    for (const name of CHAIN_CODES) expect(chainCodeOf(RpcErrorCodes[name])).toBe(name);
  });
});

describe('mapping thrown errors', () => {
  let t: Harness;
  let throwing: unknown;
  beforeAll(async () => {
    const api = new FakeApi();
    api.status = () => {
      throw throwing;
    };
    const extra = [
      defineMethod({
        name: 'test_bigint',
        summary: 'returns something JSON cannot encode',
        params: [],
        result: { name: 'x', schema: {} },
        handler: () => ({ n: 1n }),
      }),
      defineMethod({
        name: 'test_undefined',
        summary: 'returns nothing',
        params: [],
        result: { name: 'x', schema: { type: 'null' } },
        handler: () => undefined,
      }),
    ];
    const logger = new MemoryLogger();
    const server = new JsonRpcServer({ methods: [...chainMethods(api), ...extra], logger });
    await server.start();
    t = { api, logger, server, url: server.url };
  });
  afterAll(async () => {
    await t.server.stop();
  });

  const status = () => rpc(t.url, { jsonrpc: '2.0', id: 1, method: 'node_status' });

  it('maps a ChainError to its code with data { code, ...details } and its message', async () => {
    const reply = await rpc(t.url, { jsonrpc: '2.0', id: 1, method: 'chain_sendTransaction', params: [{ ...TX, nonce: 99 }] });
    expect(reply.json).toEqual({
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32025, message: 'nonce 99 skips ahead of 0', data: { code: 'TX_NONCE_GAP', expected: 0, got: 99 } },
    });
  });

  it.each(CHAIN_CODES)('maps ChainError %s to its own code', async (code) => {
    throwing = new ChainError(code, `failed: ${code}`);
    const reply = await status();
    expect(reply.json).toEqual({
      jsonrpc: '2.0',
      id: 1,
      error: { code: RpcErrorCodes[code as RpcErrorName], message: `failed: ${code}`, data: { code } },
    });
  });

  it('details cannot overwrite data.code', async () => {
    throwing = new ChainError('MEMPOOL_FULL', 'full', { code: 'SOMETHING_ELSE', size: 10 });
    expect((await status()).json).toMatchObject({ error: { code: RpcErrorCodes.MEMPOOL_FULL, data: { code: 'MEMPOOL_FULL', size: 10 } } });
  });

  it('an unknown ChainError code (a newer core) falls back to -32000 with data.code', async () => {
    throwing = new ChainError('FUTURE_CODE' as ChainErrorCode, 'from the future');
    expect((await status()).json).toMatchObject({ error: { code: -32000, data: { code: 'FUTURE_CODE' } } });
  });

  it('an RpcFault thrown by a handler is sent as is', async () => {
    throwing = new RpcFault(-32099, 'custom', { why: 'test' });
    expect((await status()).json).toMatchObject({ error: { code: -32099, message: 'custom', data: { why: 'test' } } });
  });

  it('-32603 hides the message and stack, and logs them', async () => {
    t.logger.errors.length = 0;
    throwing = new Error('secret database path /var/lib/cloister');
    const reply = await status();
    expect(reply.json).toEqual({ jsonrpc: '2.0', id: 1, error: { code: -32603, message: 'Internal error' } });
    expect(reply.text).not.toContain('secret');
    expect(t.logger.errors).toHaveLength(1);
    expect(String(t.logger.errors[0]?.fields?.['error'])).toContain('secret database path');
    expect(t.logger.errors[0]?.fields?.['method']).toBe('node_status');
  });

  it('-32603 for thrown non-errors, for values JSON cannot encode, and for a failing logger', async () => {
    throwing = 'a string';
    expect((await status()).json).toMatchObject({ error: { code: -32603 } });
    throwing = Object.create(null);
    expect((await status()).json).toMatchObject({ error: { code: -32603 } });
    expect((await rpc(t.url, { jsonrpc: '2.0', id: 2, method: 'test_bigint' })).json).toEqual({
      jsonrpc: '2.0',
      id: 2,
      error: { code: -32603, message: 'Internal error' },
    });
    const original = t.logger.error;
    t.logger.error = () => {
      throw new Error('logger broken');
    };
    try {
      throwing = new Error('x');
      expect((await status()).json).toMatchObject({ error: { code: -32603 } });
    } finally {
      t.logger.error = original;
    }
  });

  it('a handler that returns undefined answers result null', async () => {
    expect((await rpc(t.url, { jsonrpc: '2.0', id: 3, method: 'test_undefined' })).json).toEqual({ jsonrpc: '2.0', id: 3, result: null });
  });

  it('one failing entry does not spoil its batch', async () => {
    throwing = new Error('boom');
    const reply = await rpc(t.url, [
      { jsonrpc: '2.0', id: 1, method: 'node_status' },
      { jsonrpc: '2.0', id: 2, method: 'test_bigint' },
      { jsonrpc: '2.0', id: 3, method: 'chain_getNonce', params: [h('a')] },
    ]);
    expect(reply.json).toEqual([
      { jsonrpc: '2.0', id: 1, error: { code: -32603, message: 'Internal error' } },
      { jsonrpc: '2.0', id: 2, error: { code: -32603, message: 'Internal error' } },
      { jsonrpc: '2.0', id: 3, result: 3 },
    ]);
  });
});

describe('a server on its own', () => {
  it('starts from startServer with the default table', async () => {
    const t = await startServer();
    expect((await rpc(t.url, { jsonrpc: '2.0', id: 1, method: 'node_status' })).json).toMatchObject({ result: { chainId: 'test-chain' } });
    await t.server.stop();
  });
});

describe('node/rpc/README.md', () => {
  it('lists exactly the codes of the error table', async () => {
    const { readFile } = await import('node:fs/promises');
    const readme = await readFile(new URL('../../../../node/rpc/README.md', import.meta.url), 'utf8');
    const rows = [...readme.matchAll(/^\| (-32\d{3}) \| ([A-Z_]+) \|/gm)].map((m) => [m[2], Number(m[1])]);
    expect(Object.fromEntries(rows)).toEqual({ ...RpcErrorCodes });
    expect(rows).toHaveLength(Object.keys(RpcErrorCodes).length);
  });
});
