import { once } from 'node:events';
import { createServer, connect, Socket, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ComponentLogger, Logger, MultiaddrConnection, Upgrader } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { coalescedTcp, coalesceSocketWrites, writesCoalesced } from '../../../../node/network/coalesced-tcp.js';

const quiet: Logger = Object.assign(() => {}, { enabled: false, error: () => {}, trace: () => {}, newScope: () => quiet });
const logger: ComponentLogger = { forComponent: () => quiet };

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

/** A connected pair on 127.0.0.1: the client socket and what the server side receives. */
async function pair(): Promise<{ client: Socket; received: () => Buffer }> {
  const chunks: Buffer[] = [];
  const server: Server = createServer((s) => s.on('data', (d: Buffer) => chunks.push(d)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', noDelay: true });
  await once(client, 'connect');
  cleanup.push(() => {
    client.destroy();
    server.close();
  });
  return { client, received: () => Buffer.concat(chunks) };
}

/** Counts the socket's system-call-level writes: Node's _write (one buffer) and _writev (many). */
function countWrites(socket: Socket): { write: number; writev: number; chunks: number } {
  const counts = { write: 0, writev: 0, chunks: 0 };
  const write = socket._write.bind(socket);
  const writev = socket._writev!.bind(socket);
  socket._write = (chunk, encoding, cb) => {
    counts.write++;
    counts.chunks++;
    write(chunk, encoding, cb);
  };
  socket._writev = (chunks, cb) => {
    counts.writev++;
    counts.chunks += chunks.length;
    writev(chunks, cb);
  };
  return counts;
}

async function untilReceived(received: () => Buffer, bytes: number): Promise<void> {
  while (received().length < bytes) await new Promise((r) => setTimeout(r, 5));
}

describe('coalesced socket writes', () => {
  it('what one tick writes leaves in one writev, in order; without it each write is its own', async () => {
    const plain = await pair();
    const plainCounts = countWrites(plain.client);
    for (let i = 0; i < 50; i++) plain.client.write(Buffer.from([i]));
    await untilReceived(plain.received, 50);
    expect(plainCounts.write).toBeGreaterThan(1); // the control: Node writes at once when it can

    const coalesced = await pair();
    coalesceSocketWrites(coalesced.client);
    coalesceSocketWrites(coalesced.client); // idempotent
    const counts = countWrites(coalesced.client);
    for (let i = 0; i < 50; i++) coalesced.client.write(Buffer.from([i]));
    await untilReceived(coalesced.received, 50);
    expect(counts).toEqual({ write: 0, writev: 1, chunks: 50 });
    expect([...coalesced.received()]).toEqual(Array.from({ length: 50 }, (_, i) => i));

    // The next tick's writes go out by themselves.
    for (let i = 50; i < 60; i++) coalesced.client.write(Buffer.from([i]));
    await untilReceived(coalesced.received, 60);
    expect(counts.writev).toBe(2);
  });

  it('keeps backpressure: past the high-water mark write returns false, and drain follows', async () => {
    const { client, received } = await pair();
    coalesceSocketWrites(client);
    const results: boolean[] = [];
    const block = Buffer.alloc(4096);
    for (let i = 0; i < 16; i++) results.push(client.write(block));
    expect(results[0]).toBe(true);
    expect(results.at(-1)).toBe(false);
    await once(client, 'drain');
    await untilReceived(received, 16 * 4096);
  });

  it('end() still sends what was written in the same tick', async () => {
    const { client, received } = await pair();
    coalesceSocketWrites(client);
    client.write(Buffer.from('last words'));
    client.end();
    await untilReceived(received, 10);
    expect(received().toString()).toBe('last words');
  });
});

describe('coalescedTcp', () => {
  it('coalesces the sockets of dialled and accepted connections', async () => {
    const seen: MultiaddrConnection[] = [];
    const upgrader: Upgrader = {
      upgradeOutbound: async (maConn: MultiaddrConnection) => {
        seen.push(maConn);
        throw new Error('stop here: only the socket matters');
      },
      upgradeInbound: async (maConn: MultiaddrConnection) => {
        seen.push(maConn);
      },
      createInboundAbortSignal: () => Object.assign(new AbortController().signal, { clear: () => {} }),
      getStreamMuxers: () => new Map(),
      getConnectionEncrypters: () => new Map(),
    };
    const transport = coalescedTcp()({ logger });
    const listener = transport.createListener({ upgrader });
    await listener.listen(multiaddr('/ip4/127.0.0.1/tcp/0'));
    cleanup.push(() => void listener.close());
    const [addr] = listener.getAddrs();
    await expect(transport.dial(addr!, { upgrader, signal: AbortSignal.timeout(5000) })).rejects.toThrow(/stop here/);
    while (seen.length < 2) await new Promise((r) => setTimeout(r, 5));
    const sockets = seen.map((c) => Reflect.get(c, 'socket'));
    expect(sockets).toHaveLength(2);
    for (const s of sockets) {
      expect(s).toBeInstanceOf(Socket);
      expect(writesCoalesced(s as Socket)).toBe(true);
    }
    for (const c of seen) c.abort(new Error('done'));
  });
});
