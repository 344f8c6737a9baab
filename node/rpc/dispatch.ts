import { isChainError } from '../../consensus/index.js';
import { chainErrorObject, RpcFault, RPC_ERRORS, type JsonRpcErrorObject } from './errors.js';
import type { RpcLogger } from './logger.js';
import {
  checkRequest,
  errorResponse,
  nestsDeeperThan,
  parseJsonBody,
  successResponse,
  type JsonRpcId,
  type JsonRpcResponse,
} from './protocol.js';
import type { MethodTable } from './table.js';

export interface DispatcherOptions {
  maxBatchSize: number;
  /** Deepest array/object nesting accepted in a body. */
  maxDepth: number;
  logger: RpcLogger;
}

const INTERNAL: JsonRpcErrorObject = { code: RPC_ERRORS.INTERNAL_ERROR.code, message: RPC_ERRORS.INTERNAL_ERROR.message };

/**
 * Runs JSON-RPC payloads against a method table, transport-free. Never throws.
 * Batch entries run concurrently; their handlers are invoked in request order
 * and responses come back in request order.
 */
export class Dispatcher {
  constructor(
    private readonly table: MethodTable,
    private readonly options: DispatcherOptions,
  ) {}

  /** Answers a raw body: the response JSON text, or null when nothing is to be sent. */
  async handleBody(bytes: Uint8Array): Promise<string | null> {
    let payload: unknown;
    try {
      payload = parseJsonBody(bytes);
    } catch (err) {
      return this.#serialize(errorResponse(null, this.#toError(err, '(parse)')));
    }
    return this.handlePayload(payload);
  }

  /** Answers a parsed payload (single request or batch). */
  async handlePayload(payload: unknown): Promise<string | null> {
    try {
      if (nestsDeeperThan(payload, this.options.maxDepth)) {
        return this.#single(RpcFault.of('INVALID_REQUEST', { reason: `nested deeper than ${this.options.maxDepth}` }));
      }
      if (!Array.isArray(payload)) {
        const response = await this.#handleOne(payload);
        return response === null ? null : this.#serialize(response);
      }
      if (payload.length === 0) return this.#single(RpcFault.of('INVALID_REQUEST', { reason: 'empty batch' }));
      if (payload.length > this.options.maxBatchSize) {
        return this.#single(RpcFault.of('BATCH_TOO_LARGE', { limit: this.options.maxBatchSize, size: payload.length }));
      }
      const responses = await Promise.all(payload.map((entry) => this.#handleOne(entry)));
      const parts = responses.filter((r): r is JsonRpcResponse => r !== null).map((r) => this.#serialize(r));
      return parts.length === 0 ? null : `[${parts.join(',')}]`;
    } catch (err) {
      // Unreachable by design; kept so that nothing ever escapes.
      return this.#single(err);
    }
  }

  #single(err: unknown): string {
    return this.#serialize(errorResponse(null, this.#toError(err, '(request)')));
  }

  async #handleOne(entry: unknown): Promise<JsonRpcResponse | null> {
    const checked = checkRequest(entry);
    if (!checked.ok) return errorResponse(checked.id, checked.fault.toJSON());
    const { request, notification } = checked;
    const id: JsonRpcId = request.id ?? null;
    let response: JsonRpcResponse;
    try {
      const bound = this.table.resolve(request.method);
      const args = bound.bind(request.params);
      // Invoked synchronously, before any await: handlers start in request order.
      const result = await (bound.method.handler as (...a: unknown[]) => unknown)(...args);
      response = successResponse(id, result);
    } catch (err) {
      response = errorResponse(id, this.#toError(err, request.method));
    }
    return notification ? null : response;
  }

  #toError(err: unknown, method: string): JsonRpcErrorObject {
    if (err instanceof RpcFault) return err.toJSON();
    if (isChainError(err)) return chainErrorObject(err);
    this.#logInternal(err, method);
    return INTERNAL;
  }

  #logInternal(err: unknown, method: string): void {
    try {
      this.options.logger.error('internal error in JSON-RPC method', {
        method: method.length > 100 ? `${method.slice(0, 100)}…` : method,
        error: err instanceof Error ? (err.stack ?? err.message) : String(err),
      });
    } catch {
      // A failing logger must not break the response.
    }
  }

  /** Serializes one response; a result that cannot be serialized becomes -32603. */
  #serialize(response: JsonRpcResponse): string {
    try {
      const text = JSON.stringify(response);
      if (typeof text === 'string') return text;
      throw new Error('response serialized to nothing');
    } catch (err) {
      this.#logInternal(err, '(serialize)');
      return JSON.stringify(errorResponse(response.id, INTERNAL));
    }
  }
}
