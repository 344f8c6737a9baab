/**
 * TCP whose sockets send what one turn of the event loop writes in one system call.
 *
 * Every frame a node sends passes Yamux and Noise, and `@libp2p/tcp` writes each buffer of the
 * encrypted frame to the socket separately (the length prefix, then the ciphertext), each its own
 * `write(2)`. A vote sent to three peers, a pushed batch and its acknowledgements, a relayed
 * consensus message: counted on four nodes at 350 tx/s, two thirds of the socket writes went to a
 * socket that had already been written in the same tick, and the writes themselves were a tenth
 * of each node's main thread.
 *
 * So each connection's socket is corked at its first write in a tick and uncorked on the next
 * `process.nextTick`: Node then hands everything written meanwhile to one `writev(2)`. Nothing waits
 * longer than the code already running: the tick queue runs as soon as the current callback and
 * its microtasks are done. Backpressure is unchanged (`write` still returns false past the socket's
 * high-water mark), and `end()` uncorks by itself.
 *
 * The transport is `@libp2p/tcp`'s own; this only wraps the upgrader it is handed, which is the one
 * place both dialled and accepted connections pass through with their socket.
 */
import { Socket } from 'node:net';
import { tcp, type TCPComponents, type TCPOptions } from '@libp2p/tcp';
import type { CreateListenerOptions, DialTransportOptions, MultiaddrConnection, Transport, Upgrader } from '@libp2p/interface';

const COALESCED = Symbol('cloister.coalescedWrites');

/** Makes a socket's writes of one tick leave together. Idempotent. */
export function coalesceSocketWrites(socket: Socket): void {
  if (writesCoalesced(socket)) return;
  const write = socket.write;
  let corked = false;
  const flush = (): void => {
    corked = false;
    socket.uncork();
  };
  // Writable and configurable: net.Socket itself replaces `write` once the peer has ended (writeAfterFIN).
  Object.defineProperty(socket, 'write', {
    configurable: true,
    writable: true,
    value: function coalescedWrite(this: Socket, ...args: unknown[]): boolean {
      if (!corked && !socket.destroyed) {
        corked = true;
        socket.cork();
        process.nextTick(flush);
      }
      return Reflect.apply(write, socket, args) as boolean;
    },
  });
  Reflect.set(socket, COALESCED, true);
}

/** Whether coalesceSocketWrites was applied to this socket. */
export function writesCoalesced(socket: Socket): boolean {
  return Reflect.get(socket, COALESCED) === true;
}

/** The socket under a TCP multiaddr connection, when it has one. */
function socketOf(maConn: MultiaddrConnection): Socket | undefined {
  const socket: unknown = Reflect.get(maConn, 'socket');
  return socket instanceof Socket ? socket : undefined;
}

function coalescingUpgrader(upgrader: Upgrader): Upgrader {
  const coalesce = (maConn: MultiaddrConnection): void => {
    const socket = socketOf(maConn);
    if (socket) coalesceSocketWrites(socket);
  };
  return Object.create(upgrader, {
    upgradeOutbound: {
      value: (maConn: MultiaddrConnection, opts: Parameters<Upgrader['upgradeOutbound']>[1]) => {
        coalesce(maConn);
        return upgrader.upgradeOutbound(maConn, opts);
      },
    },
    upgradeInbound: {
      value: (maConn: MultiaddrConnection, opts: Parameters<Upgrader['upgradeInbound']>[1]) => {
        coalesce(maConn);
        return upgrader.upgradeInbound(maConn, opts);
      },
    },
  });
}

/** `@libp2p/tcp` with coalesced socket writes on every connection it dials or accepts. */
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
