import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BodyError, readBody } from './body.js';
import { CorsPolicy, type CorsOptions } from './cors.js';
import { Dispatcher } from './dispatch.js';
import { RpcFault } from './errors.js';
import { formatUrl, isJsonContentType, requestPath } from './http-util.js';
import { consoleLogger, type RpcLogger } from './logger.js';
import type { RpcMethod } from './method.js';
import type { OpenRpcInfo } from './openrpc.js';
import { errorResponse } from './protocol.js';
import { MethodTable } from './table.js';

export interface JsonRpcServerOptions {
  /** The methods served (e.g. `chainMethods(api)`); rpc.discover is added. */
  methods: readonly RpcMethod[];
  /** The OpenRPC document's info. */
  info?: OpenRpcInfo;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port; read `port` / `url` after start()). */
  port?: number;
  /** Default 8 MiB. */
  maxBodyBytes?: number;
  /** Default 2000. */
  maxBatchSize?: number;
  /** Deepest JSON nesting accepted; default 128. */
  maxDepth?: number;
  /** A request's headers and body must arrive within this time; default 30 s. */
  requestTimeoutMs?: number;
  /** How long stop() lets in-flight requests finish before cutting them; default 2 s. */
  stopGraceMs?: number;
  /** Default off: no Access-Control-* headers at all. */
  cors?: CorsOptions;
  /** Receives internal errors (with stacks); default stderr. */
  logger?: RpcLogger;
}

const JSON_HEADERS = {
  'Content-Type': 'application/json; charset=utf-8',
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
};

type State = 'idle' | 'starting' | 'listening' | 'stopped';

/** JSON-RPC 2.0 over HTTP: POST / (single or batch), GET /health. */
export class JsonRpcServer {
  readonly table: MethodTable;
  readonly #dispatcher: Dispatcher;
  readonly #cors: CorsPolicy;
  readonly #logger: RpcLogger;
  readonly #host: string;
  readonly #requestedPort: number;
  readonly #maxBodyBytes: number;
  readonly #requestTimeoutMs: number;
  readonly #stopGraceMs: number;
  #server: Server | undefined;
  #state: State = 'idle';
  #port: number | undefined;
  #stopping: Promise<void> | undefined;

  constructor(options: JsonRpcServerOptions) {
    this.#logger = options.logger ?? consoleLogger;
    this.table = new MethodTable(options.methods, options.info);
    this.#dispatcher = new Dispatcher(this.table, {
      maxBatchSize: options.maxBatchSize ?? 2000,
      maxDepth: options.maxDepth ?? 128,
      logger: this.#logger,
    });
    this.#cors = new CorsPolicy(options.cors);
    this.#host = options.host ?? '127.0.0.1';
    this.#requestedPort = options.port ?? 0;
    this.#maxBodyBytes = options.maxBodyBytes ?? 8 * 1024 * 1024;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.#stopGraceMs = options.stopGraceMs ?? 2_000;
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

  async start(): Promise<void> {
    if (this.#state !== 'idle') throw new Error(`JsonRpcServer cannot start: it is ${this.#state}`);
    this.#state = 'starting';
    const headersTimeout = Math.min(this.#requestTimeoutMs, 60_000);
    const server = createServer(
      {
        headersTimeout,
        // Node's own backstop; the body timer in readBody answers first.
        requestTimeout: this.#requestTimeoutMs * 2,
        connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(headersTimeout / 4))),
        keepAliveTimeout: 5_000,
      },
      (req, res) => void this.#onRequest(req, res),
    );
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
    this.#stopping = new Promise<void>((resolve) => {
      const cut = setTimeout(() => server.closeAllConnections(), this.#stopGraceMs);
      cut.unref();
      server.close(() => {
        clearTimeout(cut);
        resolve();
      });
      server.closeIdleConnections();
    });
    return this.#stopping;
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.on('error', () => {});
    res.on('error', () => {});
    try {
      await this.#route(req, res);
    } catch (err) {
      this.#logger.error('JSON-RPC HTTP handler failed', { error: err instanceof Error ? err.stack : String(err) });
      if (!res.headersSent) this.#send(req, res, 500, { error: 'Internal Server Error' }, { Connection: 'close' });
      else res.destroy();
    }
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = requestPath(req);
    const method = req.method ?? '';
    if (path === '/health') {
      if (method === 'GET' || method === 'HEAD') return this.#send(req, res, 200, { ok: true });
      return this.#send(req, res, 405, { error: 'Method Not Allowed' }, { Allow: 'GET, HEAD' });
    }
    if (path !== '/') return this.#send(req, res, 404, { error: 'Not Found' });
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
      body = await readBody(req, { maxBytes: this.#maxBodyBytes, timeoutMs: this.#requestTimeoutMs });
    } catch (err) {
      if (!(err instanceof BodyError) || err.kind === 'aborted') return void res.destroy();
      const fault =
        err.kind === 'too-large'
          ? RpcFault.of('REQUEST_TOO_LARGE', { limit: this.#maxBodyBytes })
          : RpcFault.of('REQUEST_TIMEOUT', { timeoutMs: this.#requestTimeoutMs });
      return this.#send(req, res, err.kind === 'too-large' ? 413 : 408, errorResponse(null, fault.toJSON()), {
        Connection: 'close',
      });
    }
    const text = await this.#dispatcher.handleBody(body);
    if (res.destroyed) return;
    if (text === null) return this.#send(req, res, 204, null);
    this.#sendText(req, res, 200, text, JSON_HEADERS);
  }

  #send(req: IncomingMessage, res: ServerResponse, status: number, body: unknown, headers: OutgoingHttpHeaders = {}): void {
    if (body === null) return this.#sendText(req, res, status, null, headers);
    this.#sendText(req, res, status, JSON.stringify(body), { ...JSON_HEADERS, ...headers });
  }

  #sendText(req: IncomingMessage, res: ServerResponse, status: number, text: string | null, headers: OutgoingHttpHeaders): void {
    if (res.headersSent || res.destroyed) return;
    const all: OutgoingHttpHeaders = { ...this.#cors.headers(req), ...headers };
    if (this.#state === 'stopped') all['Connection'] = 'close';
    if (text === null) {
      res.writeHead(status, all).end();
      return;
    }
    const bytes = Buffer.from(text, 'utf8');
    all['Content-Length'] = bytes.length;
    res.writeHead(status, all).end(req.method === 'HEAD' ? undefined : bytes);
  }
}
