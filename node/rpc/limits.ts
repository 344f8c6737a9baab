/**
 * Every limit the JSON-RPC server enforces, so that no client can take all of
 * the node's file descriptors, memory or enclave time. The node config's `rpc`
 * section sets them (node/config); the defaults are far above what a
 * legitimate client needs (the benchmark sends batches of 250 transactions,
 * the test helpers fetch 200 block headers per batch).
 */
export interface RpcLimits {
  /** Open connections, all clients together; more are refused (closed at once). */
  maxConnections: number;
  /** Open connections from one client (an IPv4 address, or an IPv6 /64); more are refused. */
  maxConnectionsPerClient: number;
  /** HTTP requests of one client being answered at once; more get HTTP 429 TOO_MANY_REQUESTS. */
  maxRequestsPerClient: number;
  /** HTTP requests being answered at once, all clients together; more get HTTP 503 SERVER_BUSY. */
  maxRequestsInFlight: number;
  /** Request bodies and responses held at once, all requests together; past it, SERVER_BUSY. */
  maxInFlightBytes: number;
  /** One request body; more is HTTP 413 REQUEST_TOO_LARGE. */
  maxBodyBytes: number;
  /** Entries in one batch; more is one BATCH_TOO_LARGE error. */
  maxBatchSize: number;
  /** Entries of one batch running at once; they start in request order. */
  batchConcurrency: number;
  /** One JSON-RPC response (a single call's, or one batch entry's); a larger one is RESPONSE_TOO_LARGE. */
  maxResponseBytes: number;
  /** All the results of one HTTP request; entries past it get BATCH_BUDGET_EXCEEDED. */
  maxBatchResponseBytes: number;
  /** A request's headers and body must arrive, and its response must be taken, within this time. */
  requestTimeoutMs: number;
  /** Open WebSocket connections, all clients together (each also counts as a connection of its client); more are refused with HTTP 503. */
  maxWebSockets: number;
  /** Subscriptions open on one WebSocket; more are refused with TOO_MANY_SUBSCRIPTIONS. */
  maxSubscriptionsPerSocket: number;
  /** Bytes queued for one WebSocket that its client has not taken yet; past it the socket is closed (1008) and its subscriptions dropped. */
  maxSocketBufferedBytes: number;
  /** A WebSocket is pinged this often; one that has not answered the previous ping by then is cut. */
  socketPingIntervalMs: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_RPC_LIMITS: Readonly<RpcLimits> = Object.freeze({
  maxConnections: 256,
  maxConnectionsPerClient: 64,
  maxRequestsPerClient: 32,
  maxRequestsInFlight: 128,
  maxInFlightBytes: 256 * MiB,
  maxBodyBytes: 8 * MiB,
  maxBatchSize: 2000,
  batchConcurrency: 256,
  // A block with all its transactions is at most the genesis maxBlockBytes (4 MiB by default) plus about 200 bytes a transaction.
  maxResponseBytes: 8 * MiB,
  maxBatchResponseBytes: 32 * MiB,
  requestTimeoutMs: 30_000,
  maxWebSockets: 128,
  maxSubscriptionsPerSocket: 64,
  // A few full blocks' worth of notifications: a client this far behind is not catching up.
  maxSocketBufferedBytes: 8 * MiB,
  socketPingIntervalMs: 30_000,
});

export const RPC_LIMIT_NAMES = Object.keys(DEFAULT_RPC_LIMITS) as (keyof RpcLimits)[];

/**
 * The defaults with `overrides` applied; throws an Error naming the first limit
 * that is not a positive safe integer or contradicts another.
 */
export function resolveRpcLimits(overrides: Partial<RpcLimits> = {}): RpcLimits {
  const limits: RpcLimits = { ...DEFAULT_RPC_LIMITS };
  for (const name of RPC_LIMIT_NAMES) {
    const value: unknown = overrides[name];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw new Error(`${name} must be a positive integer`);
    }
    limits[name] = value;
  }
  const atMost = (small: keyof RpcLimits, large: keyof RpcLimits): void => {
    if (limits[small] > limits[large]) throw new Error(`${small} (${limits[small]}) must not exceed ${large} (${limits[large]})`);
  };
  atMost('maxConnectionsPerClient', 'maxConnections');
  atMost('maxRequestsPerClient', 'maxRequestsInFlight');
  atMost('maxResponseBytes', 'maxBatchResponseBytes');
  atMost('maxBatchResponseBytes', 'maxInFlightBytes');
  atMost('maxBodyBytes', 'maxInFlightBytes');
  return limits;
}
