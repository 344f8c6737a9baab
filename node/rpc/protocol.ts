import { RpcFault, type JsonRpcErrorObject } from './errors.js';
import { describeInexact, isInexactNumber, parseJsonExact } from './exact-json.js';

/** JSON-RPC 2.0 envelopes and their checks, independent of the transport. */

export type JsonRpcId = string | number | null;
export type JsonRpcParams = unknown[] | Record<string, unknown>;

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  method: string;
  params?: JsonRpcParams;
  /** Absent for a notification. */
  id?: JsonRpcId;
}

export type JsonRpcResponse =
  | { jsonrpc: '2.0'; id: JsonRpcId; result: unknown }
  | { jsonrpc: '2.0'; id: JsonRpcId; error: JsonRpcErrorObject };

export function isJsonRpcId(value: unknown): value is JsonRpcId {
  return value === null || typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

export function successResponse(id: JsonRpcId, result: unknown): JsonRpcResponse {
  return { jsonrpc: '2.0', id, result: result === undefined ? null : result };
}

export function errorResponse(id: JsonRpcId, error: JsonRpcErrorObject): JsonRpcResponse {
  return { jsonrpc: '2.0', id, error };
}

const has = (obj: object, key: string): boolean => Object.prototype.hasOwnProperty.call(obj, key);

export type CheckedRequest =
  | { ok: true; request: JsonRpcRequest; notification: boolean }
  | { ok: false; id: JsonRpcId; fault: RpcFault };

/** Checks one request object; an invalid one is answered (id null unless its id was usable). */
export function checkRequest(value: unknown): CheckedRequest {
  const fail = (id: JsonRpcId, reason: string): CheckedRequest => ({
    ok: false,
    id,
    fault: RpcFault.of('INVALID_REQUEST', { reason }),
  });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(null, 'request must be an object');
  const obj = value as Record<string, unknown>;
  const hasId = has(obj, 'id');
  if (hasId && isInexactNumber(obj['id'])) return fail(null, `id ${describeInexact(obj['id'])}, so it could not be echoed as sent`);
  if (hasId && !isJsonRpcId(obj['id'])) return fail(null, 'id must be a string, a number or null');
  const id = hasId ? (obj['id'] as JsonRpcId) : null;
  if (obj['jsonrpc'] !== '2.0') return fail(id, 'jsonrpc must be "2.0"');
  if (typeof obj['method'] !== 'string') return fail(id, 'method must be a string');
  const params = obj['params'];
  if (has(obj, 'params') && (typeof params !== 'object' || params === null)) {
    return fail(id, 'params must be an array or an object');
  }
  const request: JsonRpcRequest = { jsonrpc: '2.0', method: obj['method'] };
  if (params !== undefined) request.params = params as JsonRpcParams;
  if (hasId) request.id = id;
  return { ok: true, request, notification: !hasId };
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * Decodes strict UTF-8 and parses JSON; throws -32700. A number that would be
 * read as another value than the one written is a marker (see exact-json.ts),
 * refused where it is used.
 */
export function parseJsonBody(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw RpcFault.of('PARSE_ERROR', { reason: 'body is not valid UTF-8' });
  }
  try {
    return parseJsonExact(text);
  } catch {
    throw RpcFault.of('PARSE_ERROR', { reason: 'body is not valid JSON' });
  }
}

export interface PayloadShape {
  /** Arrays and objects nest deeper than the limit. */
  tooDeep: boolean;
  /** Every number in it is a safe integer (no marker of an inexact literal either): no param needs its numbers checked. */
  onlySafeIntegers: boolean;
}

/** One walk over a parsed payload, iterative (safe on any depth); stops at the first level too deep. */
export function inspectPayload(value: unknown, maxDepth: number): PayloadShape {
  if (typeof value !== 'object' || value === null) return { tooDeep: false, onlySafeIntegers: isSafeIntegerLeaf(value) };
  let onlySafeIntegers = true;
  const stack: [object, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (depth >= maxDepth) return { tooDeep: true, onlySafeIntegers };
    for (const child of Array.isArray(item) ? item : Object.values(item)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
      else if (onlySafeIntegers && !isSafeIntegerLeaf(child)) onlySafeIntegers = false;
    }
  }
  return { tooDeep: false, onlySafeIntegers };
}

function isSafeIntegerLeaf(value: unknown): boolean {
  if (typeof value === 'number') return Number.isSafeInteger(value) && !Object.is(value, -0);
  return typeof value !== 'symbol';
}
