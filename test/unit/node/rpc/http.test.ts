import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsonRpcServer, RpcErrorCodes, chainMethods } from '../../../../node/rpc/index.js';
import { FakeApi, post, rpc, startServer, type Harness } from './fixtures.js';

let t: Harness;
beforeAll(async () => {
  t = await startServer({ maxBodyBytes: 1024 });
});
afterAll(async () => {
  await t.server.stop();
});

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

describe('HTTP routing', () => {
  it('GET /health is 200 {"ok":true}', async () => {
    const res = await fetch(`${t.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });

  it('other paths are 404, other methods 405', async () => {
    expect((await fetch(`${t.url}/nope`)).status).toBe(404);
    expect((await post(`${t.url}/nope`, '{}')).status).toBe(404);
    const get = await fetch(t.url);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect((await fetch(t.url, { method: 'PUT', body: '{}' })).status).toBe(405);
    expect((await fetch(`${t.url}/health`, { method: 'POST', body: '{}' })).status).toBe(405);
    expect((await fetch(t.url, { method: 'OPTIONS' })).status).toBe(405);
  });

  it('a query string does not change the route', async () => {
    const reply = await rpc(`${t.url}/?x=1`, { jsonrpc: '2.0', id: 1, method: 'chain_blockNumber' });
    expect(reply.json).toEqual({ jsonrpc: '2.0', id: 1, result: 1 });
  });

  it('a wrong Content-Type is HTTP 415 with a -32600 body', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1']) {
      const reply = await post(t.url, '{"jsonrpc":"2.0","id":1,"method":"chain_blockNumber"}', { 'content-type': type });
      expect(reply.status).toBe(415);
      expect(reply.json).toMatchObject({ id: null, error: { code: -32600 } });
    }
    const ok = await post(t.url, '{"jsonrpc":"2.0","id":1,"method":"chain_blockNumber"}', {
      'content-type': 'Application/JSON; charset=UTF-8',
    });
    expect(ok.status).toBe(200);
  });
});

describe('limits', () => {
  it('a body over maxBodyBytes (declared length) is HTTP 413 with a JSON-RPC error', async () => {
    const reply = await post(t.url, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'x', params: ['a'.repeat(2000)] }));
    expect(reply.status).toBe(413);
    expect(reply.json).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: RpcErrorCodes.REQUEST_TOO_LARGE, message: 'Request body too large', data: { limit: 1024 } },
    });
  });

  it('a chunked body over maxBodyBytes is HTTP 413 too', async () => {
    const req = httpRequest(t.url, { method: 'POST', headers: { 'content-type': 'application/json' } });
    const response = once(req, 'response') as Promise<[IncomingMessage]>;
    req.on('error', () => {});
    req.write('['.repeat(600));
    req.write(' '.repeat(600));
    const [res] = await response;
    expect(res.statusCode).toBe(413);
    expect(JSON.parse(await readAll(res))).toMatchObject({ error: { code: RpcErrorCodes.REQUEST_TOO_LARGE } });
    req.destroy();
  });

  it('a body at the limit is accepted', async () => {
    const base = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'chain_blockNumber' });
    const padded = base.slice(0, -1) + ' '.repeat(1024 - base.length) + '}';
    expect(padded.length).toBe(1024);
    expect((await post(t.url, padded)).json).toEqual({ jsonrpc: '2.0', id: 1, result: 1 });
  });

  it('a body that never completes times out with HTTP 408 and the connection closes', async () => {
    const slow = await startServer({ requestTimeoutMs: 200 });
    try {
      const socket = connect(slow.server.port, '127.0.0.1');
      await once(socket, 'connect');
      socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"jsonrpc":');
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      await once(socket, 'close');
      const text = Buffer.concat(chunks).toString('utf8');
      expect(text.startsWith('HTTP/1.1 408')).toBe(true);
      expect(text).toContain(`"code":${RpcErrorCodes.REQUEST_TIMEOUT}`);
    } finally {
      await slow.server.stop();
    }
  });

  it('garbage that is not HTTP at all is answered 400 and does not hurt the server', async () => {
    const socket = connect(t.server.port, '127.0.0.1');
    await once(socket, 'connect');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.write(Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0d, 0x0a, 0x0d, 0x0a]));
    await once(socket, 'close');
    expect(Buffer.concat(chunks).toString('latin1')).toMatch(/^HTTP\/1\.1 400/);
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
  });
});

describe('CORS', () => {
  it('is absent by default: no Access-Control-* headers at all', async () => {
    const reply = await post(t.url, '{"jsonrpc":"2.0","id":1,"method":"chain_blockNumber"}', { origin: 'https://evil.example' });
    expect([...reply.headers.keys()].filter((k) => k.startsWith('access-control-'))).toEqual([]);
    const preflight = await fetch(t.url, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect([...preflight.headers.keys()].filter((k) => k.startsWith('access-control-'))).toEqual([]);
  });

  it('answers only the configured origins', async () => {
    const c = await startServer({ cors: { allowedOrigins: ['https://app.example'] } });
    try {
      const preflight = await fetch(c.url, {
        method: 'OPTIONS',
        headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example');
      expect(preflight.headers.get('access-control-allow-headers')).toBe('Content-Type');
      expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
      const allowed = await post(c.url, '{"jsonrpc":"2.0","id":1,"method":"chain_blockNumber"}', { origin: 'https://app.example' });
      expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
      expect(allowed.headers.get('vary')).toBe('Origin');
      const other = await fetch(c.url, {
        method: 'OPTIONS',
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
      });
      expect([...other.headers.keys()].filter((k) => k.startsWith('access-control-'))).toEqual([]);
      const denied = await post(c.url, '{"jsonrpc":"2.0","id":1,"method":"chain_blockNumber"}', { origin: 'https://evil.example' });
      expect(denied.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await c.server.stop();
    }
  });
});

describe('lifecycle', () => {
  it('exposes url and port after start; throws before', async () => {
    const server = new JsonRpcServer({ methods: chainMethods(new FakeApi()) });
    expect(() => server.port).toThrow();
    await server.start();
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    await expect(server.start()).rejects.toThrow();
    await server.stop();
  });

  it('stop() is idempotent and prompt with an open keep-alive connection', async () => {
    const s = await startServer({ stopGraceMs: 60_000 });
    const agent = new Agent({ keepAlive: true });
    try {
      const req = httpRequest(`${s.url}/health`, { agent });
      req.end();
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      const socket = res.socket; // detached from res once the body is read
      expect(JSON.parse(await readAll(res))).toEqual({ ok: true });
      expect(socket.destroyed).toBe(false); // kept alive
      const closed = once(socket, 'close');
      const first = s.server.stop();
      const second = s.server.stop();
      expect(second).toBe(first);
      await first; // resolves although the grace period is a minute: the idle connection is closed at once
      await closed;
      await s.server.stop();
      await expect(fetch(`${s.url}/health`)).rejects.toThrow();
    } finally {
      agent.destroy();
    }
  });

  it('stop() before start() resolves, and the server cannot start after stop', async () => {
    const server = new JsonRpcServer({ methods: [] });
    await server.stop();
    await expect(server.start()).rejects.toThrow();
  });

  it('stop() cuts a request still in flight after the grace period', async () => {
    const api = new FakeApi();
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => (entered = resolve));
    api.getNonce = () => {
      entered();
      return new Promise<number>(() => {}); // never settles
    };
    const s = await startServer({ stopGraceMs: 50 }, api);
    const pending = rpc(s.url, { jsonrpc: '2.0', id: 1, method: 'chain_getNonce', params: ['a'.repeat(64)] });
    await inHandler;
    await s.server.stop();
    await expect(pending).rejects.toThrow();
  });

  it('a client that disconnects while its request runs does not hurt the server', async () => {
    const api = new FakeApi();
    let release!: (n: number) => void;
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => (entered = resolve));
    api.getNonce = () => {
      entered();
      return new Promise<number>((resolve) => (release = resolve));
    };
    const s = await startServer({}, api);
    try {
      const req = httpRequest(s.url, { method: 'POST', headers: { 'content-type': 'application/json' } });
      req.on('error', () => {});
      req.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'chain_getNonce', params: ['a'.repeat(64)] }));
      await inHandler;
      const closed = once(req.socket!, 'close');
      req.destroy();
      await closed;
      release(1);
      expect((await rpc(s.url, { jsonrpc: '2.0', id: 2, method: 'chain_blockNumber' })).json).toEqual({ jsonrpc: '2.0', id: 2, result: 1 });
    } finally {
      await s.server.stop();
    }
  });

  it('a second server on a taken port rejects start()', async () => {
    const server = new JsonRpcServer({ methods: [], port: t.server.port });
    await expect(server.start()).rejects.toThrow(/EADDRINUSE/);
    await server.stop();
  });
});
