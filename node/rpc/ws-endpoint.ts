import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { BytePool } from './byte-pool.js';
import type { ClientTracker } from './clients.js';
import type { CorsPolicy } from './cors.js';
import { replyText, type Dispatcher } from './dispatch.js';
import { RpcFault } from './errors.js';
import { requestPath } from './http-util.js';
import type { RpcLimits } from './limits.js';
import type { RpcLogger } from './logger.js';
import { errorResponse } from './protocol.js';
import type { RefusalLog } from './refusal-log.js';
import type { RpcSession } from './session.js';
import { CLOSE_TOO_SLOW, type HubSession, type NotificationSink, type SubscriptionHub } from './subscriptions.js';

export interface WebSocketEndpointOptions {
  limits: Readonly<RpcLimits>;
  clients: ClientTracker;
  pool: BytePool;
  dispatcher: Dispatcher;
  /** Absent: the socket serves the method table, without subscriptions. */
  hub: SubscriptionHub | undefined;
  cors: CorsPolicy;
  refusals: RefusalLog;
  logger: RpcLogger;
}

/** Close code when the server stops (going away). */
const CLOSE_GOING_AWAY = 1001;

interface Peer {
  readonly socket: WebSocket;
  readonly client: string;
  readonly session: HubSession | undefined;
  /** Answered the last ping. */
  alive: boolean;
}

/**
 * JSON-RPC over WebSocket on the RPC port (`GET /` with an upgrade): every
 * method of the table through the same dispatcher as HTTP (single or batch,
 * same checks and errors), plus the subscriptions. Each message counts as a
 * request of its client (maxRequestsPerClient, maxRequestsInFlight) and its
 * bytes come from the same pool; a message is at most maxBodyBytes. A socket
 * whose client takes less than it is sent is closed past
 * maxSocketBufferedBytes; one that answers no ping within
 * socketPingIntervalMs is cut.
 */
export class WebSocketEndpoint {
  readonly #o: WebSocketEndpointOptions;
  readonly #wss: WebSocketServer;
  readonly #peers = new Set<Peer>();
  readonly #pinger: NodeJS.Timeout;
  #closing: Promise<void> | undefined;

  constructor(options: WebSocketEndpointOptions) {
    this.#o = options;
    // noServer: the HTTP server's 'upgrade' events come here, after the node's own checks.
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: options.limits.maxBodyBytes, perMessageDeflate: false, clientTracking: false });
    this.#pinger = setInterval(() => this.#ping(), options.limits.socketPingIntervalMs).unref();
  }

  get open(): number {
    return this.#peers.size;
  }

  /** An HTTP upgrade request from `client` (a connection the server already counted). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, client: string): void {
    socket.on('error', () => {});
    if (this.#closing) return refuse(socket, 503, 'Service Unavailable');
    if (requestPath(req) !== '/') return refuse(socket, 404, 'Not Found');
    if (req.method !== 'GET' || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return refuse(socket, 400, 'Bad Request');
    if (!this.#originAllowed(req)) return refuse(socket, 403, 'Forbidden');
    if (!this.#o.clients.openWebSocket(client)) {
      this.#o.refusals.note('WebSockets in all', client);
      return refuse(socket, 503, 'Service Unavailable');
    }
    let counted = true;
    const release = (): void => {
      if (counted) this.#o.clients.closeWebSocket(client);
      counted = false;
    };
    socket.once('close', release);
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, client, release));
  }

  /** Closes every socket (1001), cutting those that do not finish the close within `graceMs`. Idempotent. */
  close(graceMs: number): Promise<void> {
    if (this.#closing) return this.#closing;
    clearInterval(this.#pinger);
    const peers = [...this.#peers];
    this.#closing = Promise.all(
      peers.map(
        (peer) =>
          new Promise<void>((resolve) => {
            if (peer.socket.readyState === WebSocket.CLOSED) return resolve();
            peer.socket.once('close', () => resolve());
            peer.socket.close(CLOSE_GOING_AWAY, 'server stopping');
            setTimeout(() => peer.socket.terminate(), graceMs).unref();
          }),
      ),
    ).then(() => new Promise<void>((resolve) => this.#wss.close(() => resolve())));
    return this.#closing;
  }

  /**
   * A browser sends an Origin and no preflight comes before a WebSocket: a page
   * of another site must not reach the node through its visitor's browser. The
   * node's own page (same host) and the CORS origins are allowed; a client
   * without Origin is not a browser.
   */
  #originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    if (this.#o.cors.allows(origin)) return true;
    try {
      return new URL(origin).host === req.headers.host;
    } catch {
      return false;
    }
  }

  #accept(ws: WebSocket, client: string, release: () => void): void {
    const sink: NotificationSink = {
      send: (text) => ws.send(text),
      get bufferedAmount() {
        return ws.bufferedAmount;
      },
      close: (code, reason) => ws.close(code, reason),
    };
    const peer: Peer = { socket: ws, client, session: this.#o.hub?.open(sink), alive: true };
    this.#peers.add(peer);
    ws.on('error', () => {});
    ws.on('pong', () => (peer.alive = true));
    ws.on('message', (data: RawData) => void this.#onMessage(peer, toBuffer(data)));
    ws.once('close', () => {
      this.#peers.delete(peer);
      peer.session?.close();
      release();
    });
    if (this.#closing) ws.close(CLOSE_GOING_AWAY, 'server stopping');
  }

  async #onMessage(peer: Peer, body: Buffer): Promise<void> {
    const { clients, pool, dispatcher, limits } = this.#o;
    const refusal = clients.startRequest(peer.client);
    if (refusal) {
      this.#o.refusals.note(refusal === 'TOO_MANY_REQUESTS' ? 'requests per client' : 'requests in flight', peer.client);
      const fault =
        refusal === 'TOO_MANY_REQUESTS'
          ? RpcFault.of('TOO_MANY_REQUESTS', { limit: limits.maxRequestsPerClient })
          : RpcFault.of('SERVER_BUSY', { reason: 'too many requests in flight' });
      return this.#send(peer, JSON.stringify(errorResponse(null, fault.toJSON())));
    }
    const lease = pool.lease();
    try {
      if (!lease.tryTake(body.length)) {
        this.#o.refusals.note('bytes in flight', peer.client);
        return this.#send(peer, JSON.stringify(errorResponse(null, RpcFault.of('SERVER_BUSY', { reason: 'too many bytes in flight' }).toJSON())));
      }
      const created: string[] = [];
      const session = peer.session;
      const rpcSession: RpcSession | undefined = session && {
        subscribe: (kind, filter) => {
          const id = session.subscribe(kind, filter);
          created.push(id);
          return id;
        },
        unsubscribe: (id) => session.unsubscribe(id),
      };
      const gone = { get aborted() { return peer.socket.readyState !== WebSocket.OPEN; } };
      const reply = await dispatcher.handleBody(body, { lease, signal: gone, ...(rpcSession ? { session: rpcSession } : {}) });
      if (reply) this.#send(peer, replyText(reply));
      // After the answer that carries their ids: a subscription's first notification never comes before its id.
      for (const id of created) session?.announce(id);
    } finally {
      lease.close();
      clients.endRequest(peer.client);
    }
  }

  #send(peer: Peer, text: string): void {
    if (peer.socket.readyState !== WebSocket.OPEN) return;
    peer.socket.send(text);
    const limit = this.#o.limits.maxSocketBufferedBytes;
    if (peer.socket.bufferedAmount > limit) {
      this.#o.logger.warn('WebSocket dropped: its client does not take its answers', { client: peer.client, limit });
      if (peer.session) peer.session.drop(CLOSE_TOO_SLOW, `too slow: more than ${limit} bytes waiting`);
      else peer.socket.close(CLOSE_TOO_SLOW, `too slow: more than ${limit} bytes waiting`);
    }
  }

  /** A socket that did not answer the last ping is gone (a half-open TCP connection would hold its slot for ever). */
  #ping(): void {
    for (const peer of this.#peers) {
      if (!peer.alive) {
        peer.socket.terminate();
        continue;
      }
      peer.alive = false;
      peer.socket.ping();
    }
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** Answers an upgrade that is refused with a bare HTTP status, and closes the connection. */
function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`);
}
