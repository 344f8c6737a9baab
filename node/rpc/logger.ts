/** What the RPC server logs through; inject the node's logger. */
export interface RpcLogger {
  error(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** Writes to stderr; the default when no logger is injected. */
export const consoleLogger: RpcLogger = {
  error: (message, fields) => console.error(`[rpc] ${message}`, fields ?? ''),
  warn: (message, fields) => console.warn(`[rpc] ${message}`, fields ?? ''),
};

export const silentLogger: RpcLogger = { error: () => {}, warn: () => {} };
