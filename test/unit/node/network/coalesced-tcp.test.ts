import { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ComponentLogger, Logger, MultiaddrConnection, Upgrader } from '@libp2p/interface';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { Uint8ArrayList } from 'uint8arraylist';
import { coalescedTcp, coalesceFrameWrites, framesCoalesced } from '../../../../node/network/coalesced-tcp.js';

const quiet: Logger = Object.assign(() => {}, { enabled: false, error: () => {}, trace: () => {}, newScope: () => quiet });
const logger: ComponentLogger = { forComponent: () => quiet };

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) await f();
});

/** Counts the socket's system-call-level writes: Node's _write (one buffer) and _writev (several). */
function countWrites(socket: Socket): { write: number; writev: number; buffers: number } {
  const counts = { write: 0, writev: 0, buffers: 0 };
  const write = socket._write.bind(socket);
  const writev = socket._writev!.bind(socket);
  socket._write = (chunk, encoding, cb) => {
    counts.write++;
    counts.buffers++;
    write(chunk, encoding, cb);
  };
  socket._writev = (chunks, cb) => {
    counts.writev++;
    counts.buffers += chunks.length;
    writev(chunks, cb);
  };
  return counts;
}

/**
 * A dialled and an accepted TCP connection of a transport (coalescing or plain), kept from the
 * upgrader, which never upgrades them: the test writes to them directly.
 */
async function connectionPair(transportOf: typeof coalescedTcp = coalescedTcp): Promise<{ dialled: MultiaddrConnection; accepted: MultiaddrConnection; received: () => Uint8Array }> {
  const chunks: Uint8Array[] = [];
  let accepted: MultiaddrConnection | undefined;
  let dialled: MultiaddrConnection | undefined;
  const upgrader: Upgrader = {
    upgradeOutbound: async (maConn: MultiaddrConnection) => {
      dialled = maConn;
      return new Promise(() => {}); // never upgraded: the connection stays as it is
    },
    upgradeInbound: async (maConn: MultiaddrConnection) => {
      maConn.addEventListener('message', (e) => chunks.push(e.data.subarray()));
      accepted = maConn;
    },
    createInboundAbortSignal: () => Object.assign(new AbortController().signal, { clear: () => {} }),
    getStreamMuxers: () => new Map(),
    getConnectionEncrypters: () => new Map(),
  };
  const transport = transportOf()({ logger });
  const listener = transport.createListener({ upgrader });
  await listener.listen(multiaddr('/ip4/127.0.0.1/tcp/0'));
  cleanup.push(() => listener.close());
  void transport.dial(listener.getAddrs()[0]!, { upgrader, signal: AbortSignal.timeout(30_000) }).catch(() => {});
  while (!dialled || !accepted) await new Promise((r) => setTimeout(r, 5));
  cleanup.push(() => dialled!.abort(new Error('done')));
  return { dialled, accepted, received: () => Buffer.concat(chunks) };
}

async function untilReceived(received: () => Uint8Array, bytes: number): Promise<void> {
  while (received().length < bytes) await new Promise((r) => setTimeout(r, 5));
}

/**
 * Hands the connection's sendData several buffers at once, as the layers above do (a Noise frame is its
 * length prefix and its ciphertext). Through Reflect: sendData is not on the MultiaddrConnection interface.
 */
function sendFrame(maConn: MultiaddrConnection, ...parts: number[][]): void {
  Reflect.apply(Reflect.get(maConn, 'sendData') as (data: Uint8ArrayList) => unknown, maConn, [new Uint8ArrayList(...parts.map((p) => Uint8Array.from(p)))]);
}

describe('coalescedTcp', () => {
  it('coalesces the connections it dials and accepts', async () => {
    const { dialled, accepted } = await connectionPair();
    expect(framesCoalesced(dialled)).toBe(true);
    expect(framesCoalesced(accepted)).toBe(true);
    const plain = await connectionPair(tcp);
    expect(framesCoalesced(plain.dialled)).toBe(false);
  });

  it('what the connection hands the socket at once (a frame of several buffers) leaves in one writev, in order; before, each buffer was its own write', async () => {
    const { dialled, received } = await connectionPair(tcp);
    const socket = Reflect.get(dialled, 'socket') as Socket;
    expect(socket).toBeInstanceOf(Socket);
    const counts = countWrites(socket);
    sendFrame(dialled, [1, 2], [3, 4, 5], [6]);
    await untilReceived(received, 6);
    expect(counts).toMatchObject({ write: 3, writev: 0 }); // the control: the transport alone

    coalesceFrameWrites(dialled);
    coalesceFrameWrites(dialled); // idempotent: wrapped once
    sendFrame(dialled, [7, 8], [9, 10, 11], [12]);
    await untilReceived(received, 12);
    expect(counts).toEqual({ write: 3, writev: 1, buffers: 6 });
    expect([...received()]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    // Nothing waits for a later frame: each call leaves by itself.
    sendFrame(dialled, [13], [14]);
    await untilReceived(received, 14);
    expect(counts.writev).toBe(2);
  });

  it('keeps backpressure: a frame past the socket\'s high-water mark says it cannot take more, and drain follows', async () => {
    const { dialled, received } = await connectionPair();
    const drained = new Promise<void>((resolve) => dialled.addEventListener('drain', () => resolve(), { once: true }));
    // As @libp2p/tcp alone: the socket takes what it can, and the connection says to wait.
    expect(dialled.send(new Uint8Array(64 * 1024))).toBe(false);
    await drained;
    await untilReceived(received, 64 * 1024);
  });
});
