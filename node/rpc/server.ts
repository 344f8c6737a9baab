import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { BodyError, readBody } from './body.js';
import { BytePool, type ByteLease } from './byte-pool.js';
import { ClientTracker, clientKey, type RequestRefusal } from './clients.js';
import { CorsPolicy, type CorsOptions } from './cors.js';
import { Dispatcher, replyText, type RpcReply } from './dispatch.js';
import { httpStatusOf, RpcFault, type RpcErrorName } from './errors.js';
import { formatUrl, isJsonContentType, requestPath } from './http-util.js';
import { resolveRpcLimits, type RpcLimits } from './limits.js';
import { consoleLogger, type RpcLogger } from './logger.js';
import type { RpcMethod } from './method.js';
import type { OpenRpcInfo } from './openrpc.js';
import { errorResponse } from './protocol.js';
import { RefusalLog } from './refusal-log.js';
import { PAGE_HEADERS, type StaticPage } from './static-pages.js';
import { subscriptionMethods } from './subscription-methods.js';
import { SubscriptionHub, type BlockFeed } from './subscriptions.js';
import { MethodTable } from './table.js';
import { WebSocketEndpoint } from './ws-endpoint.js';

/** The limits (see RpcLimits for each one and DEFAULT_RPC_LIMITS for the defaults), and: */
export interface JsonRpcServerOptions extends Partial<RpcLimits> {
  /** The methods served (e.g. `chainMethods(api)`); rpc.discover is added. */
  methods: readonly RpcMethod[];
  /** The OpenRPC document's info. */
  info?: OpenRpcInfo;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port; read `port` / `url` after start()). */
  port?: number;
  /** Deepest JSON nesting accepted; default 128. */
  maxDepth?: number;
  /** How long stop() lets in-flight requests finish before cutting them; default 2 s. */
  stopGraceMs?: number;
  /** Default off: no Access-Control-* headers at all. */
  cors?: CorsOptions;
  /** Receives internal errors (with stacks) and refusals over the limits; default stderr. */
  logger?: RpcLogger;
  /** Committed blocks: with it, chain_subscribe / chain_unsubscribe are served on WebSockets. */
  feed?: BlockFeed;
  /** Files served on GET / HEAD by path (the explorer: `/`, `/explorer.js`, `/explorer.css`); absent: none. */
  pages?: ReadonlyMap<string, StaticPage>;
  /** Prometheus text on GET /metrics, and a count of the requests answered; absent: /metrics is 404. */
  metricsEndpoint?: MetricsEndpoint;
}

/** What the server needs of the node's metrics. */
export interface MetricsEndpoint {
  readonly contentType: string;
  text(): Promise<string>;
  /** `method` is a method this server serves, or 'unknown' (the server checks what the client sent against its table). */
  rpcRequest(method: string, outcome: 'ok' | 'error'): void;
}

const JSON_HEADERS = {
  'Content-Type': 'application/json; charset=utf-8',
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
};

/** Below this a batch is joined into one string and written at once; above, its parts are written one by one. */
const JOIN_BELOW_BYTES = 256 * 1024;

type State = 'idle' | 'starting' | 'listening' | 'stopped';

/** One request being answered: its client, its share of the in-flight bytes, and whether its client is gone. */
interface RequestScope {
  readonly client: string;
  readonly lease: ByteLease;
  readonly gone: { aborted: boolean };
}

interface Connection {
  readonly client: string;
  /** Closes a connection that sends no request at all (Node's own timers start only with a request). */
  firstRequestTimer: NodeJS.Timeout | undefined;
  /**
   * Ends the requests still open on it when it closes: a pipelined response
   * queued behind another never closes by itself. (One listener for all, not
   * one per pipelined request.)
   */
  readonly open: Set<() => void>;
}

/** What a request over a server limit is answered with: the error, its HTTP status comes from the table. */
const REFUSALS: Record<RequestRefusal, { error: RpcErrorName; data: (limits: RpcLimits) => unknown; kind: string }> = {
  TOO_MANY_REQUESTS: { error: 'TOO_MANY_REQUESTS', data: (l) => ({ limit: l.maxRequestsPerClient }), kind: 'requests per client' },
  SERVER_BUSY: { error: 'SERVER_BUSY', data: () => ({ reason: 'too many requests in flight' }), kind: 'requests in flight' },
};

/**
 * JSON-RPC 2.0 over HTTP: POST / (single or batch), GET /health, and GET /metrics when given metrics.
 *
 * No client can take all of the node's file descriptors or memory: the open
 * connections are capped in all and per client (more are closed at once), as
 * are requests in flight (more are answered 429 / 503 and closed), and the
 * bytes of request bodies and responses held at once (see RpcLimits). A
 * connection that sends no request, a body that comes too slowly and a
 * response that is not taken in time are all cut after `requestTimeoutMs`.
 */
export class JsonRpcServer {
  readonly table: MethodTable;
  readonly limits: Readonly<RpcLimits>;
  readonly #dispatcher: Dispatcher;
  readonly #cors: CorsPolicy;
  readonly #logger: RpcLogger;
  readonly #host: string;
  readonly #requestedPort: number;
  readonly #stopGraceMs: number;
  readonly #headersTimeoutMs: number;
  readonly #clients: ClientTracker;
  readonly #pool: BytePool;
  readonly #refusals: RefusalLog;
  readonly #connections = new WeakMap<Socket, Connection>();
  readonly #feed: BlockFeed | undefined;
  readonly #pages: ReadonlyMap<string, StaticPage>;
  readonly #metrics: MetricsEndpoint | undefined;
  #hub: SubscriptionHub | undefined;
  #sockets: WebSocketEndpoint | undefined;
  #server: Server | undefined;
  #state: State = 'idle';
  #port: number | undefined;
  #stopping: Promise<void> | undefined;

  constructor(options: JsonRpcServerOptions) {
    this.#logger = options.logger ?? consoleLogger;
    this.limits = Object.freeze(resolveRpcLimits(options));
    this.#feed = options.feed;
    this.#pages = options.pages ?? new Map();
    this.table = new MethodTable(options.feed ? [...options.methods, ...subscriptionMethods()] : options.methods, options.info);
    const metrics = (this.#metrics = options.metricsEndpoint);
    const served = new Set(this.table.names());
    this.#dispatcher = new Dispatcher(this.table, {
      maxBatchSize: this.limits.maxBatchSize,
      maxDepth: options.maxDepth ?? 128,
      batchConcurrency: this.limits.batchConcurrency,
      maxResponseBytes: this.limits.maxResponseBytes,
      maxBatchResponseBytes: this.limits.maxBatchResponseBytes,
      logger: this.#logger,
      // The client chooses the method string: only names in the table become label values.
      ...(metrics ? { onAnswered: (method: string, outcome: 'ok' | 'error') => metrics.rpcRequest(served.has(method) ? method : 'unknown', outcome) } : {}),
    });
    this.#cors = new CorsPolicy(options.cors);
    this.#host = options.host ?? '127.0.0.1';
    this.#requestedPort = options.port ?? 0;
    this.#stopGraceMs = options.stopGraceMs ?? 2_000;
    this.#headersTimeoutMs = Math.min(this.limits.requestTimeoutMs, 60_000);
    this.#clients = new ClientTracker(this.limits);
    this.#pool = new BytePool(this.limits.maxInFlightBytes);
    this.#refusals = new RefusalLog(this.#logger);
  }

  /** The bound port; throws before start(). */
  get port(): number {
    if (this.#port === undefined) throw new Error('JsonRpcServer is not listening');
    return this.#port;
  }

  /** The base URL, e.g. http://127.0.0.1:8545; throws before start(). */
  get url(): string {
    return formatUrl(this.#host, this.port);
  }

  /** What the server holds now: open connections, requests in flight, bytes of bodies and responses (for tests and status). */
  get load(): { connections: number; requests: number; bytes: number; webSockets: number; subscriptions: number } {
    return {
      connections: this.#clients.connections,
      requests: this.#clients.requestsInFlight,
      bytes: this.#pool.used,
      webSockets: this.#clients.webSockets,
      subscriptions: this.#hub?.subscriptions ?? 0,
    };
  }

  async start(): Promise<void> {
    if (this.#state !== 'idle') throw new Error(`JsonRpcServer cannot start: it is ${this.#state}`);
    this.#state = 'starting';
    const server = createServer(
      {
        headersTimeout: this.#headersTimeoutMs,
        // Node's own backstop; the body timer in readBody answers first.
        requestTimeout: this.limits.requestTimeoutMs * 2,
        connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(this.#headersTimeoutMs / 4))),
        keepAliveTimeout: 5_000,
      },
      (req, res) => void this.#onRequest(req, res),
    );
    // Past it Node closes a new connection at once (and emits 'drop').
    server.maxConnections = this.limits.maxConnections;
    server.on('drop', (data?: { remoteAddress?: string }) => this.#refusals.note('connections in all', clientKey(data?.remoteAddress)));
    server.on('connection', (socket: Socket) => this.#onConnection(socket));
    const logger = this.#logger;
    const limits = this.limits;
    this.#hub = this.#feed && new SubscriptionHub(this.#feed, { ...limits, logger });
    const sockets = new WebSocketEndpoint({
      limits,
      clients: this.#clients,
      pool: this.#pool,
      dispatcher: this.#dispatcher,
      hub: this.#hub,
      cors: this.#cors,
      refusals: this.#refusals,
      logger,
    });
    this.#sockets = sockets;
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      const connection = this.#connections.get(socket) ?? this.#track(socket, clientKey(socket.remoteAddress), false);
      // The socket is the WebSocket's now: Node's request timers no longer apply, nor does the first-request timer.
      clearTimeout(connection.firstRequestTimer);
      connection.firstRequestTimer = undefined;
      sockets.upgrade(req, socket, head, connection.client);
    });
    // Malformed HTTP, oversized headers and slow headers: Node's default clientError
    // handling answers 400 / 431 / 408 and destroys the socket.
    this.#server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.#requestedPort, this.#host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.#state = 'stopped';
      this.#server = undefined;
      this.#hub?.stop();
      void sockets.close(0);
      throw err;
    }
    server.on('error', (err) => this.#logger.error('JSON-RPC server error', { error: String(err) }));
    this.#port = (server.address() as AddressInfo).port;
    this.#state = 'listening';
  }

  /** Stops listening and closes every connection (idle ones at once). Idempotent. */
  stop(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    const server = this.#server;
    this.#state = 'stopped';
    if (!server) return (this.#stopping = Promise.resolve());
    // WebSockets are no longer the HTTP server's connections: they are closed here (server.close waits for them).
    this.#hub?.stop();
    const socketsClosed = this.#sockets?.close(this.#stopGraceMs);
    const httpClosed = new Promise<void>((resolve) => {
      const cut = setTimeout(() => server.closeAllConnections(), this.#stopGraceMs);
      cut.unref();
      server.close(() => {
        clearTimeout(cut);
        resolve();
      });
      server.closeIdleConnections();
    });
    this.#stopping = Promise.all([httpClosed, socketsClosed]).then(() => {});
    return this.#stopping;
  }

  #onConnection(socket: Socket): void {
    const client = clientKey(socket.remoteAddress);
    if (!this.#clients.openConnection(client)) {
      this.#refusals.note('connections per client', client);
      socket.destroy();
      return;
    }
    this.#track(socket, client, true);
  }

  /** Follows a connection until it closes; `counted` when the client tracker counts it. */
  #track(socket: Socket, client: string, counted: boolean): Connection {
    const firstRequestTimer = counted ? setTimeout(() => socket.destroy(), this.#headersTimeoutMs).unref() : undefined;
    const connection: Connection = { client, firstRequestTimer, open: new Set() };
    socket.once('close', () => {
      clearTimeout(connection.firstRequestTimer);
      for (const end of [...connection.open]) end();
      if (counted) this.#clients.closeConnection(client);
    });
    this.#connections.set(socket, connection);
    return connection;
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.on('error', () => {});
    res.on('error', () => {});
    // Every socket was tracked when it connected; the fallback only keeps this path total.
    const connection = this.#connections.get(req.socket) ?? this.#track(req.socket, clientKey(req.socket.remoteAddress), false);
    clearTimeout(connection.firstRequestTimer);
    connection.firstRequestTimer = undefined;
    const client = connection.client;
    const refusal = this.#clients.startRequest(client);
    if (refusal) return this.#refuse(req, res, refusal, client);
    // The request counts until both its response is over and its work is done,
    // so a client that disconnects cannot leave work running beyond the limits.
    const scope: RequestScope = { client, lease: this.#pool.lease(), gone: { aborted: false } };
    let open = 2;
    const settle = (): void => {
      if (--open === 0) this.#clients.endRequest(client);
    };
    // The response is over when it closes, or when its connection does.
    const over = (): void => {
      // Both may happen in one emit (the socket's close closes the response).
      if (scope.gone.aborted) return;
      connection.open.delete(over);
      scope.gone.aborted = true;
      scope.lease.close();
      settle();
    };
    res.once('close', over);
    connection.open.add(over);
    try {
      await this.#route(req, res, scope);
    } catch (err) {
      this.#logger.error('JSON-RPC HTTP handler failed', { error: err instanceof Error ? err.stack : String(err) });
      if (!res.headersSent) this.#send(req, res, 500, { error: 'Internal Server Error' }, { Connection: 'close' });
      else res.destroy();
    } finally {
      settle();
    }
  }

  #refuse(req: IncomingMessage, res: ServerResponse, refusal: RequestRefusal, client: string): void {
    const { error, data, kind } = REFUSALS[refusal];
    this.#refusals.note(kind, client);
    this.#sendFault(req, res, RpcFault.of(error, data(this.limits)));
  }

  async #route(req: IncomingMessage, res: ServerResponse, scope: RequestScope): Promise<void> {
    const path = requestPath(req);
    const method = req.method ?? '';
    if (path === '/health') {
      if (method === 'GET' || method === 'HEAD') return this.#send(req, res, 200, { ok: true });
      return this.#send(req, res, 405, { error: 'Method Not Allowed' }, { Allow: 'GET, HEAD' });
    }
    if (path === '/metrics' && this.#metrics) {
      if (method !== 'GET' && method !== 'HEAD') return this.#send(req, res, 405, { error: 'Method Not Allowed' }, { Allow: 'GET, HEAD' });
      const text = await this.#metrics.text();
      return this.#sendText(req, res, 200, text, { 'Content-Type': this.#metrics.contentType, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    }
    const page = path === null ? undefined : this.#pages.get(path);
    if (page && (method === 'GET' || method === 'HEAD')) {
      if (this.#writeHead(req, res, 200, { ...PAGE_HEADERS, 'Content-Type': page.contentType, 'Content-Length': page.body.length })) {
        res.end(method === 'HEAD' ? undefined : page.body);
      }
      return;
    }
    if (path !== '/') {
      if (page) return this.#send(req, res, 405, { error: 'Method Not Allowed' }, { Allow: 'GET, HEAD' });
      return this.#send(req, res, 404, { error: 'Not Found' });
    }
    if (method === 'OPTIONS' && this.#cors.enabled) {
      return this.#send(req, res, 204, null, this.#cors.preflightHeaders(req));
    }
    if (method !== 'POST') {
      return this.#send(req, res, 405, { error: 'Method Not Allowed' }, { Allow: this.#cors.enabled ? 'POST, OPTIONS' : 'POST' });
    }
    if (!isJsonContentType(req.headers['content-type'])) {
      const fault = RpcFault.of('INVALID_REQUEST', { reason: 'Content-Type must be application/json' });
      return this.#send(req, res, 415, errorResponse(null, fault.toJSON()), { Connection: 'close' });
    }
    let body: Buffer;
    try {
      body = await readBody(req, {
        maxBytes: this.limits.maxBodyBytes,
        timeoutMs: this.limits.requestTimeoutMs,
        take: (bytes) => scope.lease.tryTake(bytes),
      });
    } catch (err) {
      if (!(err instanceof BodyError) || err.kind === 'aborted') return void res.destroy();
      return this.#sendFault(req, res, this.#bodyFault(err, scope.client));
    }
    const reply = await this.#dispatcher.handleBody(body, { lease: scope.lease, signal: scope.gone });
    if (res.destroyed) return;
    if (reply === null) return this.#send(req, res, 204, null);
    this.#sendReply(req, res, reply);
  }

  #bodyFault(err: BodyError, client: string): RpcFault {
    if (err.kind === 'too-large') return RpcFault.of('REQUEST_TOO_LARGE', { limit: this.limits.maxBodyBytes });
    if (err.kind === 'busy') {
      this.#refusals.note('bytes in flight', client);
      return RpcFault.of('SERVER_BUSY', { reason: 'too many bytes in flight' });
    }
    return RpcFault.of('REQUEST_TIMEOUT', { timeoutMs: this.limits.requestTimeoutMs });
  }

  /** A request refused as a whole: the fault's HTTP status, and the connection closed (the rest of its body is never read). */
  #sendFault(req: IncomingMessage, res: ServerResponse, fault: RpcFault): void {
    this.#send(req, res, httpStatusOf(fault.code), errorResponse(null, fault.toJSON()), { Connection: 'close' });
  }

  #sendReply(req: IncomingMessage, res: ServerResponse, reply: RpcReply): void {
    if (reply.bytes < JOIN_BELOW_BYTES || !reply.batch) return this.#sendText(req, res, reply.status, replyText(reply), JSON_HEADERS);
    if (!this.#writeHead(req, res, reply.status, { ...JSON_HEADERS, 'Content-Length': reply.bytes })) return;
    // Written part by part: a large batch is never held twice (its parts and one joined string).
    res.cork();
    res.write('[');
    reply.parts.forEach((part, i) => {
      if (i > 0) res.write(',');
      res.write(part);
    });
    res.end(']');
  }

  #send(req: IncomingMessage, res: ServerResponse, status: number, body: unknown, headers: OutgoingHttpHeaders = {}): void {
    if (body === null) return this.#sendText(req, res, status, null, headers);
    this.#sendText(req, res, status, JSON.stringify(body), { ...JSON_HEADERS, ...headers });
  }

  #sendText(req: IncomingMessage, res: ServerResponse, status: number, text: string | null, headers: OutgoingHttpHeaders): void {
    if (text === null) {
      if (this.#writeHead(req, res, status, headers)) res.end();
      return;
    }
    const bytes = Buffer.from(text, 'utf8');
    if (this.#writeHead(req, res, status, { ...headers, 'Content-Length': bytes.length })) res.end(req.method === 'HEAD' ? undefined : bytes);
  }

  /**
   * Writes the status and headers (with CORS, and `Connection: close` once
   * stopping); false when the response can no longer be sent. A response the
   * client does not take within requestTimeoutMs is cut, so a client that stops
   * reading cannot hold the node's memory.
   */
  #writeHead(req: IncomingMessage, res: ServerResponse, status: number, headers: OutgoingHttpHeaders): boolean {
    if (res.headersSent || res.destroyed) return false;
    const all: OutgoingHttpHeaders = { ...this.#cors.headers(req), ...headers };
    if (this.#state === 'stopped') all['Connection'] = 'close';
    res.writeHead(status, all);
    const cut = setTimeout(() => res.destroy(), this.limits.requestTimeoutMs).unref();
    const done = (): void => clearTimeout(cut);
    res.once('finish', done).once('close', done);
    return true;
  }
}
