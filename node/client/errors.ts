import type { ChainErrorCode } from '../../consensus/index.js';
import { RpcErrorCodes, type RpcErrorName } from '../rpc/errors.js';

/**
 * A JSON-RPC error the server answered with; or INVALID_ARGS that the client
 * gives itself, without sending, for a number JSON would change on the way
 * (NaN, ±Infinity, -0), as the server would for one it cannot carry exactly.
 */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  readonly code: number;
  readonly data?: unknown;
  /** The ChainErrorCode (data.code) of an application error, e.g. 'TX_NONCE_GAP'. */
  readonly chainCode?: ChainErrorCode;
  /** The method called; undefined for an error that answers a whole batch. */
  readonly method?: string;

  constructor(error: { code: number; message: string; data?: unknown }, method?: string) {
    super(error.message);
    this.code = error.code;
    if (error.data !== undefined) this.data = error.data;
    if (method !== undefined) this.method = method;
    const data = error.data as { code?: unknown } | null | undefined;
    if (data !== null && typeof data === 'object' && typeof data.code === 'string') {
      this.chainCode = data.code as ChainErrorCode;
    }
  }

  /** True when this is the named error, e.g. `err.is('TX_NONCE_GAP')` or `err.is('INVALID_PARAMS')`. */
  is(name: RpcErrorName): boolean {
    return this.code === RpcErrorCodes[name];
  }
}

export type ClientErrorKind = 'network' | 'timeout' | 'http' | 'protocol';

/**
 * A failure on the client's side of the wire: the server was unreachable
 * ('network'), too slow ('timeout'), answered with an unexpected HTTP status
 * ('http'), or with something that is not a JSON-RPC response ('protocol').
 */
export class ClientError extends Error {
  override readonly name = 'ClientError';
  constructor(
    readonly kind: ClientErrorKind,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Reads a JSON-RPC error object; undefined when `value` is not one. */
export function asErrorObject(value: unknown): { code: number; message: string; data?: unknown } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { code, message } = value as { code?: unknown; message?: unknown };
  if (typeof code !== 'number' || typeof message !== 'string') return undefined;
  return value as { code: number; message: string; data?: unknown };
}
