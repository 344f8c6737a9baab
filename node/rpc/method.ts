import type { RpcErrorName } from './errors.js';
import type { JsonSchema } from './schemas.js';

/** One parameter of a method, in position order. */
export interface ParamSpec {
  readonly name: string;
  readonly summary?: string;
  readonly schema: JsonSchema;
  /** Defaults to true. Optional params must come after every required one. */
  readonly required?: boolean;
}

export interface ResultSpec {
  readonly name: string;
  readonly schema: JsonSchema;
}

/** A JSON-RPC notification the server sends after a method's call (a subscription's items). */
export interface NotificationSpec {
  readonly name: string;
  readonly summary: string;
  readonly params: readonly ParamSpec[];
}

/** How many calls of a method may run at once across the server, and how many may wait for a turn. */
export interface MethodConcurrency {
  readonly maxInFlight: number;
  readonly maxWaiting: number;
}

/**
 * A JSON-RPC method: its documentation (which is also its OpenRPC entry) and
 * its handler. The handler gets the params in declared order, already
 * validated against their schemas (an absent optional param is `undefined`),
 * then a CallContext through which it reserves the bytes of a large response
 * before it does the work. It may throw a ChainError (mapped to its
 * application code), an RpcFault (sent as is), or anything else (sent as
 * -32603, logged).
 */
export interface RpcMethod {
  readonly name: string;
  readonly summary: string;
  readonly description?: string;
  readonly params: readonly ParamSpec[];
  readonly result: ResultSpec;
  /** Application errors the method can answer with, for the OpenRPC document. */
  readonly errors?: readonly RpcErrorName[];
  /** The notification the call leads the server to send, for the OpenRPC document (`x-notification`). */
  readonly notification?: NotificationSpec;
  /** Absent: no limit beyond the server's. */
  readonly concurrency?: MethodConcurrency;
  readonly handler: (...args: never[]) => unknown;
}

/**
 * Declares a method with a typed handler. The argument types are the author's
 * promise that they match the param schemas, which the server enforces first;
 * the argument after the params is the CallContext.
 */
export function defineMethod<A extends unknown[]>(
  spec: Omit<RpcMethod, 'handler'> & { readonly handler: (...args: A) => unknown },
): RpcMethod {
  return spec as RpcMethod;
}
