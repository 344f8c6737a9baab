/**
 * TCP that writes each encrypted frame to its socket in one system call.
 *
 * `@libp2p/tcp` writes every buffer of what the connection hands it separately, and a Noise frame
 * arrives as two (its length prefix, then the ciphertext): two `write(2)`s a frame. Counted on four
 * nodes at 350 tx/s, socket writes were about a tenth of each node's main thread, a third of them
 * Yamux window updates (yamux-window.ts) and most of the rest pairs of one frame.
 *
 * So the connection's socket is corked while it is handed a frame and uncorked right after: Node
 * passes the buffers to one `writev(2)`. Nothing is held back past that call (a frame leaves
 * exactly when it did before), backpressure is unchanged (`write` still returns false past the
 * socket's high-water mark), and an `end()` uncorks by itself.
 *
 * Corking for a whole tick instead (every frame a tick writes, in one call) cut the writes by
 * another third in the same count, but a frame written early in a tick then waited for the rest of
 * the tick's work, and the latency's tail at 500 tx/s looked worse in alternating runs; not kept.
 *
 * The transport is `@libp2p/tcp`'s own; this only wraps the upgrader it is handed, which is the one
 * place both dialled and accepted connections pass through with their socket.
 */
import { Socket } from 'node:net';
import { tcp, type TCPComponents, type TCPOptions } from '@libp2p/tcp';
import type { CreateListenerOptions, DialTransportOptions, MultiaddrConnection, Transport, Upgrader } from '@libp2p/interface';

const COALESCED = Symbol('cloister.coalescedFrames');

/** Whether coalesceFrameWrites was applied to this connection. */
export function framesCoalesced(maConn: MultiaddrConnection): boolean {
  return Reflect.get(maConn, COALESCED) === true;
}

/**
 * Makes each `sendData` call of a TCP connection (one frame, or the frames its queue held) leave
 * in one system call. Idempotent; a connection without a socket is left as it is.
 */
export function coalesceFrameWrites(maConn: MultiaddrConnection): void {
  const socket = socketOf(maConn);
  const sendData: unknown = Reflect.get(maConn, 'sendData');
  if (!socket || typeof sendData !== 'function' || framesCoalesced(maConn)) return;
  Object.defineProperty(maConn, 'sendData', {
    configurable: true,
    writable: true,
    value: function coalescedSendData(this: MultiaddrConnection, ...args: unknown[]): unknown {
      socket.cork();
      try {
        return Reflect.apply(sendData, this, args);
      } finally {
        socket.uncork();
      }
    },
  });
  Reflect.set(maConn, COALESCED, true);
}

/** The socket under a TCP multiaddr connection, when it has one. */
function socketOf(maConn: MultiaddrConnection): Socket | undefined {
  const socket: unknown = Reflect.get(maConn, 'socket');
  return socket instanceof Socket ? socket : undefined;
}

function coalescingUpgrader(upgrader: Upgrader): Upgrader {
  return Object.create(upgrader, {
    upgradeOutbound: {
      value: (maConn: MultiaddrConnection, opts: Parameters<Upgrader['upgradeOutbound']>[1]) => {
        coalesceFrameWrites(maConn);
        return upgrader.upgradeOutbound(maConn, opts);
      },
    },
    upgradeInbound: {
      value: (maConn: MultiaddrConnection, opts: Parameters<Upgrader['upgradeInbound']>[1]) => {
        coalesceFrameWrites(maConn);
        return upgrader.upgradeInbound(maConn, opts);
      },
    },
  });
}

/** `@libp2p/tcp` with one system call a frame on every connection it dials or accepts. */
export function coalescedTcp(init?: TCPOptions): (components: TCPComponents) => Transport {
  const factory = tcp(init);
  return (components) => {
    const transport = factory(components);
    return Object.create(transport, {
      dial: {
        value: (ma: Parameters<Transport['dial']>[0], options: DialTransportOptions) =>
          transport.dial(ma, { ...options, upgrader: coalescingUpgrader(options.upgrader) }),
      },
      createListener: {
        value: (options: CreateListenerOptions) => transport.createListener({ ...options, upgrader: coalescingUpgrader(options.upgrader) }),
      },
    });
  };
}
