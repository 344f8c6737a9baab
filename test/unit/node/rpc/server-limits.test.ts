import { once } from 'node:events';
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RpcErrorCodes, defineMethod } from '../../../../node/rpc/index.js';
import { FakeApi, h, startServer, type Harness } from './fixtures.js';

// Every address in 127.0.0.0/8 is this host: each stands for another client.
const ATTACKER = '127.0.0.2';
const OTHER = '127.0.0.3';
const THIRD = '127.0.0.4';

const running: Harness[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  sockets.splice(0).forEach((s) => s.destroy());
  await Promise.all(running.splice(0).map((t) => t.server.stop()));
});

async function serve(...args: Parameters<typeof startServer>): Promise<Harness> {
  const t = await startServer(...args);
  running.push(t);
  return t;
}

/** A FakeApi whose getNonce waits until released; `entered` resolves once `n` calls are waiting. */
function gatedApi(): { api: FakeApi; waitingFor(n: number): Promise<void>; release(): void } {
  const api = new FakeApi();
  const releases: (() => void)[] = [];
  const watchers: { n: number; resolve: () => void }[] = [];
  api.getNonce = () =>
    new Promise<number>((resolve) => {
      releases.push(() => resolve(3));
      for (const w of watchers.filter((w) => releases.length >= w.n)) w.resolve();
    });
  return {
    api,
    waitingFor: (n) => (releases.length >= n ? Promise.resolve() : new Promise((resolve) => watchers.push({ n, resolve }))),
    release: () => releases.splice(0).forEach((r) => r()),
  };
}

/** An idle TCP connection from `localAddress`. */
async function openSocket(port: number, localAddress: string): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1', localAddress });
  sockets.push(socket);
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

/** Resolves with what the server sent before it closed the connection. */
async function closedByServer(socket: Socket): Promise<string> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  if (!socket.destroyed) await once(socket, 'close');
  return Buffer.concat(chunks).toString('utf8');
}

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  json: unknown;
}

/** POSTs a JSON-RPC payload from `localAddress` (a fresh connection unless an agent is given). */
function post(url: string, payload: unknown, localAddress: string, agent: Agent | false = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
    const req = httpRequest(url, { method: 'POST', localAddress, agent, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text ? (JSON.parse(text) as unknown) : undefined });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const blockNumber = { jsonrpc: '2.0', id: 1, method: 'chain_blockNumber' };
const getNonce = (id: number) => ({ jsonrpc: '2.0', id, method: 'chain_getNonce', params: [h('a')] });

describe('connections', () => {
  it('past maxConnectionsPerClient a client’s connections are closed at once; other clients are served', async () => {
    const t = await serve({ maxConnectionsPerClient: 3, maxConnections: 10 });
    const held = [];
    for (let i = 0; i < 3; i++) held.push(await openSocket(t.server.port, ATTACKER));
    const refused = await Promise.all(Array.from({ length: 5 }, () => openSocket(t.server.port, ATTACKER).then(closedByServer)));
    expect(refused).toEqual(['', '', '', '', '']);
    expect(held.every((s) => !s.destroyed)).toBe(true);
    expect((await post(t.url, blockNumber, OTHER)).json).toEqual({ jsonrpc: '2.0', id: 1, result: 1 });
    expect(t.logger.warnings[0]).toMatchObject({ message: 'JSON-RPC refused work over its limits', fields: { refused: { 'connections per client': 1 } } });
    // Once its connections close, the client is served again.
    held.forEach((s) => s.destroy());
    await vi.waitFor(() => expect(t.server.load.connections).toBe(0));
    expect((await post(t.url, blockNumber, ATTACKER)).status).toBe(200);
  });

  it('past maxConnections every new connection is closed at once', async () => {
    const t = await serve({ maxConnectionsPerClient: 3, maxConnections: 5 });
    for (let i = 0; i < 3; i++) await openSocket(t.server.port, ATTACKER);
    for (let i = 0; i < 2; i++) await openSocket(t.server.port, OTHER);
    expect(await closedByServer(await openSocket(t.server.port, THIRD))).toBe('');
    expect(t.server.load.connections).toBe(5);
  });

  it('a connection that sends no request is closed after the header timeout', async () => {
    const t = await serve({ requestTimeoutMs: 300 });
    const idle = await openSocket(t.server.port, ATTACKER);
    // Closed silently by the server's first-request timer, or with a 408 by Node's headers timeout
    // (both run at the header timeout; which one comes first depends on the machine's load).
    expect(await closedByServer(idle)).toMatch(/^(HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*)?$/);
    await vi.waitFor(() => expect(t.server.load.connections).toBe(0));
  });

  it('a keep-alive client reuses one connection, even when it may have only one', async () => {
    const t = await serve({ maxConnectionsPerClient: 1 });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 20; i++) {
        expect((await post(t.url, { ...blockNumber, id: i }, ATTACKER, agent)).json).toEqual({ jsonrpc: '2.0', id: i, result: 1 });
        expect(t.server.load.connections).toBe(1);
      }
    } finally {
      agent.destroy();
    }
  });
});

describe('requests in flight', () => {
  it('past maxRequestsPerClient a client gets HTTP 429 TOO_MANY_REQUESTS; others are served; it is served again once its requests end', async () => {
    const gate = gatedApi();
    const t = await serve({ maxRequestsPerClient: 2 }, gate.api);
    const first = [post(t.url, getNonce(1), ATTACKER), post(t.url, getNonce(2), ATTACKER)];
    await gate.waitingFor(2);
    const over = await post(t.url, getNonce(3), ATTACKER);
    expect(over.status).toBe(429);
    expect(over.headers.connection).toBe('close');
    expect(over.json).toEqual({ jsonrpc: '2.0', id: null, error: { code: RpcErrorCodes.TOO_MANY_REQUESTS, message: 'Too many requests', data: { limit: 2 } } });
    expect((await post(t.url, blockNumber, OTHER)).status).toBe(200);
    gate.release();
    expect((await Promise.all(first)).map((r) => r.json)).toEqual([
      { jsonrpc: '2.0', id: 1, result: 3 },
      { jsonrpc: '2.0', id: 2, result: 3 },
    ]);
    expect((await post(t.url, blockNumber, ATTACKER)).status).toBe(200);
    await vi.waitFor(() => expect(t.server.load).toEqual({ connections: 0, requests: 0, bytes: 0, webSockets: 0, subscriptions: 0 }));
  });

  it('past maxRequestsInFlight every client gets HTTP 503 SERVER_BUSY', async () => {
    const gate = gatedApi();
    const t = await serve({ maxRequestsPerClient: 2, maxRequestsInFlight: 3 }, gate.api);
    const held = [post(t.url, getNonce(1), ATTACKER), post(t.url, getNonce(2), ATTACKER), post(t.url, getNonce(3), OTHER)];
    await gate.waitingFor(3);
    const busy = await post(t.url, blockNumber, THIRD);
    expect(busy.status).toBe(503);
    expect(busy.json).toMatchObject({ error: { code: RpcErrorCodes.SERVER_BUSY, data: { reason: 'too many requests in flight' } } });
    gate.release();
    await Promise.all(held);
    expect((await post(t.url, blockNumber, THIRD)).status).toBe(200);
  });

  it('pipelined requests on one connection count each: the ones over the limit are refused and the connection closed', async () => {
    const gate = gatedApi();
    const t = await serve({ maxRequestsPerClient: 2 }, gate.api);
    const socket = await openSocket(t.server.port, ATTACKER);
    const body = JSON.stringify(getNonce(1));
    const one = `POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    socket.write(one.repeat(50));
    await gate.waitingFor(2);
    expect(t.server.load.requests).toBeLessThanOrEqual(2);
    const answered = closedByServer(socket);
    gate.release();
    const text = await answered;
    // Requests parsed after the first two ended may have been admitted (and then lost with the connection).
    gate.release();
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
    // The first two are answered, the third is refused and the connection closes: the other 47 are never read.
    expect(statuses).toEqual([200, 200, 429]);
    await vi.waitFor(() => expect(t.server.load).toEqual({ connections: 0, requests: 0, bytes: 0, webSockets: 0, subscriptions: 0 }));
  });

  it('a client that disconnects frees its request only once the work is done', async () => {
    const gate = gatedApi();
    const t = await serve({ maxRequestsPerClient: 1 }, gate.api);
    const req = httpRequest(t.url, { method: 'POST', localAddress: ATTACKER, agent: false, headers: { 'content-type': 'application/json' } });
    req.on('error', () => {});
    req.end(JSON.stringify(getNonce(1)));
    await gate.waitingFor(1);
    req.destroy();
    await vi.waitFor(() => expect(t.server.load.connections).toBe(0));
    // Its work still runs, so it still counts.
    expect(t.server.load.requests).toBe(1);
    expect((await post(t.url, blockNumber, ATTACKER)).status).toBe(429);
    gate.release();
    await vi.waitFor(() => expect(t.server.load).toEqual({ connections: 0, requests: 0, bytes: 0, webSockets: 0, subscriptions: 0 }));
    expect((await post(t.url, blockNumber, ATTACKER)).status).toBe(200);
  });
});

describe('bytes in flight', () => {
  it('a body that does not fit in maxInFlightBytes is HTTP 503 SERVER_BUSY; the bytes are given back when requests end', async () => {
    const gate = gatedApi();
    const t = await serve({ maxInFlightBytes: 1500, maxBodyBytes: 1024, maxBatchResponseBytes: 1500, maxResponseBytes: 1000 }, gate.api);
    const padded = (payload: object): string => {
      const text = JSON.stringify(payload);
      return text.slice(0, -1) + ' '.repeat(1000 - text.length) + '}';
    };
    const held = post(t.url, padded(getNonce(1)), ATTACKER);
    await gate.waitingFor(1);
    expect(t.server.load.bytes).toBe(1000);
    const busy = await post(t.url, padded(blockNumber), OTHER);
    expect(busy.status).toBe(503);
    expect(busy.json).toMatchObject({ error: { code: RpcErrorCodes.SERVER_BUSY, data: { reason: 'too many bytes in flight' } } });
    gate.release();
    expect((await held).status).toBe(200);
    await vi.waitFor(() => expect(t.server.load.bytes).toBe(0));
    expect((await post(t.url, padded(blockNumber), OTHER)).status).toBe(200);
  });

  it('a response the client does not take is cut after requestTimeoutMs and its bytes given back', async () => {
    const big = defineMethod({
      name: 'test_big',
      summary: 'a large result',
      params: [],
      result: { name: 'text', schema: { type: 'string' } },
      handler: () => 'z'.repeat(24 * 1024 * 1024),
    });
    const MiB = 1024 * 1024;
    const t = await serve({ methods: [big], requestTimeoutMs: 500, maxResponseBytes: 32 * MiB, maxBatchResponseBytes: 32 * MiB });
    const socket = await openSocket(t.server.port, ATTACKER);
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'test_big' });
    socket.pause();
    socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await vi.waitFor(() => expect(t.server.load.bytes).toBeGreaterThan(24 * MiB), { timeout: 5_000 });
    await vi.waitFor(() => expect(t.server.load).toEqual({ connections: 0, requests: 0, bytes: 0, webSockets: 0, subscriptions: 0 }), { timeout: 5_000 });
    expect(socket.readableLength + socket.bytesRead).toBeLessThan(24 * MiB);
  });
});
