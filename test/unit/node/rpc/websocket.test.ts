import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CloisterClient, RpcError, RpcErrorCodes, type BlockView } from '../../../../node/client/index.js';
import type { JsonRpcServerOptions } from '../../../../node/rpc/index.js';
import { rpc, startServer, type Harness } from './fixtures.js';
import { FakeFeed } from './subscription-feed.js';

const harnesses: Harness[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  await Promise.all(harnesses.splice(0).map((t) => t.server.stop()));
});

async function serve(options: Partial<JsonRpcServerOptions> = {}): Promise<Harness & { feed: FakeFeed; ws: string }> {
  const feed = new FakeFeed();
  const t = await startServer({ feed, ...options });
  harnesses.push(t);
  return { ...t, feed, ws: t.url.replace('http', 'ws') };
}

/** An open socket whose messages are collected; `next()` resolves with the next one. */
async function connect(url: string, headers: Record<string, string> = {}): Promise<{ socket: WebSocket; next(): Promise<unknown> }> {
  const socket = new WebSocket(url, { headers });
  sockets.push(socket);
  const queue: unknown[] = [];
  const waiting: ((m: unknown) => void)[] = [];
  socket.on('message', (data) => {
    const message = JSON.parse(data.toString()) as unknown;
    const waiter = waiting.shift();
    if (waiter) waiter(message);
    else queue.push(message);
  });
  await once(socket, 'open');
  return { socket, next: () => (queue.length > 0 ? Promise.resolve(queue.shift()) : new Promise((resolve) => waiting.push(resolve))) };
}

/** The HTTP status an upgrade is refused with. */
async function refusedWith(url: string, headers: Record<string, string> = {}): Promise<number> {
  const socket = new WebSocket(url, { headers });
  sockets.push(socket);
  socket.on('error', () => {});
  const [, response] = (await once(socket, 'unexpected-response')) as [unknown, { statusCode: number }];
  return response.statusCode;
}

describe('JSON-RPC over WebSocket', () => {
  it('answers single calls and batches through the same dispatcher, with the same errors', async () => {
    const t = await serve();
    const { socket, next } = await connect(t.ws);
    socket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'chain_blockNumber' }));
    expect(await next()).toEqual({ jsonrpc: '2.0', id: 1, result: 1 });
    socket.send(JSON.stringify([
      { jsonrpc: '2.0', id: 2, method: 'chain_getBlockByNumber', params: [1] },
      { jsonrpc: '2.0', id: 3, method: 'chain_getNonce', params: ['nope'] },
      { jsonrpc: '2.0', id: 4, method: 'no_such' },
    ]));
    const batch = (await next()) as { id: number; result?: unknown; error?: { code: number } }[];
    expect(batch.map((r) => r.id)).toEqual([2, 3, 4]);
    expect(batch[0]!.result).toMatchObject({ height: 1 });
    expect(batch[1]!.error!.code).toBe(RpcErrorCodes.INVALID_PARAMS);
    expect(batch[2]!.error!.code).toBe(RpcErrorCodes.METHOD_NOT_FOUND);
    socket.send('{not json');
    expect(await next()).toMatchObject({ id: null, error: { code: RpcErrorCodes.PARSE_ERROR } });
    socket.send(JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'chain_subscribe', params: ['logs'] }));
    expect(await next()).toMatchObject({ id: 5, error: { code: RpcErrorCodes.INVALID_PARAMS } });
    expect(t.server.load.subscriptions).toBe(0);
  });

  it('refuses chain_subscribe and chain_unsubscribe over HTTP with WEBSOCKET_REQUIRED', async () => {
    const t = await serve();
    for (const [method, params] of [['chain_subscribe', ['newHeads']], ['chain_unsubscribe', ['ab']]] as const) {
      const reply = await rpc(t.url, { jsonrpc: '2.0', id: 1, method, params });
      expect(reply.json).toMatchObject({ error: { code: RpcErrorCodes.WEBSOCKET_REQUIRED } });
    }
  });

  it('delivers subscriptions through the typed client, and unsubscribes', async () => {
    const t = await serve();
    const client = new CloisterClient(t.url);
    const heads: BlockView[] = [];
    let third!: () => void;
    const gotThree = new Promise<void>((resolve) => (third = resolve));
    const sub = await client.subscribe('newHeads', undefined, (block) => {
      heads.push(block);
      if (heads.length === 3) third();
    });
    expect(sub.id).toMatch(/^[0-9a-f]{32}$/);
    t.feed.commit();
    t.feed.commit();
    t.feed.commit();
    await gotThree;
    expect(heads.map((b) => b.height)).toEqual([1, 2, 3]);
    await expect(client.subscribe('receipts', { name: 'x' }, () => {})).rejects.toSatisfy((err: unknown) => err instanceof RpcError && err.is('INVALID_PARAMS'));
    expect(await sub.unsubscribe()).toBe(true);
    expect(await sub.closed).toEqual({ code: 1000, reason: 'unsubscribed' });
    await client.closeSubscriptions();
    expect(t.server.load.subscriptions).toBe(0);
  });

  it('unsubscribe answers false for an id of another connection', async () => {
    const t = await serve();
    const a = await connect(t.ws);
    const b = await connect(t.ws);
    a.socket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'chain_subscribe', params: ['newHeads'] }));
    const { result: id } = (await a.next()) as { result: string };
    b.socket.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'chain_unsubscribe', params: [id] }));
    expect(await b.next()).toEqual({ jsonrpc: '2.0', id: 2, result: false });
    a.socket.send(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'chain_unsubscribe', params: [id] }));
    expect(await a.next()).toEqual({ jsonrpc: '2.0', id: 3, result: true });
  });

  it('refuses other paths, foreign origins, and sockets past maxWebSockets; accepts its own origin', async () => {
    const t = await serve({ maxWebSockets: 1 });
    expect(await refusedWith(`${t.ws}/other`)).toBe(404);
    expect(await refusedWith(t.ws, { origin: 'https://evil.example' })).toBe(403);
    const own = await connect(t.ws, { origin: t.url });
    expect(await refusedWith(t.ws)).toBe(503);
    own.socket.close();
    await once(own.socket, 'close');
    await expect(connect(t.ws)).resolves.toBeDefined();
  });

  it('closes a socket that sends a message over maxBodyBytes (1009)', async () => {
    const t = await serve({ maxBodyBytes: 1024 });
    const { socket } = await connect(t.ws);
    socket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'chain_blockNumber', params: ['x'.repeat(2000)] }));
    const [code] = (await once(socket, 'close')) as [number];
    expect(code).toBe(1009);
  });

  it('stop() closes every socket (1001) and stays idempotent', async () => {
    const t = await serve();
    const { socket } = await connect(t.ws);
    const closed = once(socket, 'close');
    await Promise.all([t.server.stop(), t.server.stop()]);
    const [code] = (await closed) as [number];
    expect(code).toBe(1001);
    expect(t.server.load.webSockets).toBe(0);
  });
});
