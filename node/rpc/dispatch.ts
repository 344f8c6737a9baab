import { isChainError } from '../../consensus/index.js';
import type { ByteLease } from './byte-pool.js';
import { chainErrorObject, httpStatusOf, RpcFault, RPC_ERRORS, type JsonRpcErrorObject } from './errors.js';
import type { RpcLogger } from './logger.js';
import {
  checkRequest,
  errorResponse,
  inspectPayload,
  parseJsonBody,
  successResponse,
  type JsonRpcId,
  type JsonRpcResponse,
} from './protocol.js';
import { ResponseBudget, type EntryBudget, type ResponseLimits } from './response-budget.js';
import type { RpcSession } from './session.js';
import type { BoundMethod, MethodTable } from './table.js';

export interface DispatcherOptions extends ResponseLimits {
  maxBatchSize: number;
  /** Deepest array/object nesting accepted in a body. */
  maxDepth: number;
  /** Entries of one batch running at once. */
  batchConcurrency: number;
  logger: RpcLogger;
  /**
   * Told of every answer, one per request or batch entry (notifications too): the
   * method as the client sent it ('' when there was none to read) and the outcome.
   */
  onAnswered?: (method: string, outcome: 'ok' | 'error') => void;
}

export interface DispatchOptions {
  /** The request's share of the server's in-flight bytes; its results are charged there too. */
  lease?: ByteLease;
  /** Set once the client is gone: entries not started yet are skipped. */
  signal?: { readonly aborted: boolean };
  /** The WebSocket connection the payload came on (its subscriptions); absent over HTTP. */
  session?: RpcSession;
}

/** The answer to one HTTP request. */
export interface RpcReply {
  /** True for a batch: the parts are sent as one JSON array. */
  readonly batch: boolean;
  /** Each response's JSON text, in request order (a batch is never joined into one string here). */
  readonly parts: readonly string[];
  /** UTF-8 length of the whole body. */
  readonly bytes: number;
  /** 200, or for one error alone the HTTP status the error table gives it (503 for SERVER_BUSY). */
  readonly status: number;
}

/** The body of a reply as one string. */
export function replyText(reply: RpcReply): string {
  return reply.batch ? `[${reply.parts.join(',')}]` : reply.parts[0]!;
}

/** What every entry of one request shares. */
interface EntryRun {
  budget: ResponseBudget;
  /** False when the payload holds only safe integers. */
  checkNumbers: boolean;
}

/** One response, serialized; `code` when it is an error. */
interface Answer {
  text: string;
  bytes: number;
  code?: number;
}

const INTERNAL: JsonRpcErrorObject = { code: RPC_ERRORS.INTERNAL_ERROR.code, message: RPC_ERRORS.INTERNAL_ERROR.message };

/**
 * Runs JSON-RPC payloads against a method table, transport-free. Never throws.
 *
 * A batch runs at most `batchConcurrency` entries at once. Handlers are
 * invoked in request order (the first ones synchronously, each later one when
 * an earlier entry finishes) and responses come back in request order. Each
 * response is serialized as soon as its entry finishes, so its result objects
 * can go, and charged to the request's ResponseBudget: a response over
 * `maxResponseBytes` becomes RESPONSE_TOO_LARGE, one past the batch's
 * `maxBatchResponseBytes` BATCH_BUDGET_EXCEEDED, and the rest of the batch
 * still answers. A handler that would build a large result (a block with its
 * transactions) reserves the bytes first through its CallContext, so that the
 * work is refused before it is done.
 */
export class Dispatcher {
  constructor(
    private readonly table: MethodTable,
    private readonly options: DispatcherOptions,
  ) {}

  /** Answers a raw body; null when nothing is to be sent. */
  async handleBody(bytes: Uint8Array, dispatch: DispatchOptions = {}): Promise<RpcReply | null> {
    let payload: unknown;
    try {
      payload = parseJsonBody(bytes);
    } catch (err) {
      return this.#single(err, '(parse)');
    }
    return this.handlePayload(payload, dispatch);
  }

  /** Answers a parsed payload (single request or batch). */
  async handlePayload(payload: unknown, dispatch: DispatchOptions = {}): Promise<RpcReply | null> {
    try {
      const { maxDepth, maxBatchSize } = this.options;
      const shape = inspectPayload(payload, maxDepth);
      if (shape.tooDeep) return this.#single(RpcFault.of('INVALID_REQUEST', { reason: `nested deeper than ${maxDepth}` }));
      // Almost every payload has only safe integers: then no param needs its numbers walked again.
      const run: EntryRun = { budget: new ResponseBudget(this.options, dispatch.lease, dispatch.session), checkNumbers: !shape.onlySafeIntegers };
      if (!Array.isArray(payload)) {
        const answer = await this.#answer(payload, run);
        return answer === null ? null : reply(false, [answer]);
      }
      if (payload.length === 0) return this.#single(RpcFault.of('INVALID_REQUEST', { reason: 'empty batch' }));
      if (payload.length > maxBatchSize) {
        return this.#single(RpcFault.of('BATCH_TOO_LARGE', { limit: maxBatchSize, size: payload.length }));
      }
      const answers = await this.#runBatch(payload, run, dispatch.signal);
      const sent = answers.filter((a): a is Answer => a !== null);
      return sent.length === 0 ? null : reply(true, sent);
    } catch (err) {
      // Unreachable by design; kept so that nothing ever escapes.
      return this.#single(err);
    }
  }

  /** At most batchConcurrency workers, each taking the next entry in request order. */
  async #runBatch(entries: unknown[], run: EntryRun, signal: DispatchOptions['signal']): Promise<(Answer | null)[]> {
    const answers: (Answer | null)[] = new Array<Answer | null>(entries.length).fill(null);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < entries.length && !signal?.aborted) {
        const index = next++;
        answers[index] = await this.#answer(entries[index], run);
      }
    };
    const workers = Math.min(this.options.batchConcurrency, entries.length);
    await Promise.all(Array.from({ length: workers }, () => worker()));
    return answers;
  }

  #single(err: unknown, method = '(request)'): RpcReply {
    this.options.onAnswered?.('', 'error');
    return reply(false, [this.#errorAnswer(null, this.#toError(err, method))]);
  }

  async #answer(entry: unknown, run: EntryRun): Promise<Answer | null> {
    const checked = checkRequest(entry);
    if (!checked.ok) {
      this.options.onAnswered?.('', 'error');
      return this.#errorAnswer(checked.id, checked.fault.toJSON());
    }
    const { request, notification } = checked;
    const id: JsonRpcId = request.id ?? null;
    const entryBudget = run.budget.entry();
    let result: unknown;
    try {
      const bound = this.table.resolve(request.method);
      result = await this.#invoke(bound, bound.bind(request.params, run.checkNumbers), entryBudget);
    } catch (err) {
      entryBudget.cancel();
      this.options.onAnswered?.(request.method, 'error');
      return notification ? null : this.#errorAnswer(id, this.#toError(err, request.method));
    }
    const text = this.#serialize(successResponse(id, result));
    const bytes = Buffer.byteLength(text);
    const refused = entryBudget.settle(bytes);
    // A notification's result is charged as if it were sent: otherwise a batch of
    // notifications could build blocks without end, since none is ever answered.
    this.options.onAnswered?.(request.method, refused ? 'error' : 'ok');
    if (notification) return null;
    return refused ? this.#errorAnswer(id, refused.toJSON()) : { text, bytes };
  }

  #invoke(bound: BoundMethod, args: unknown[], context: EntryBudget): unknown {
    const handler = bound.method.handler as (...a: unknown[]) => unknown;
    // Invoked synchronously, before any await: handlers start in request order.
    if (!bound.lane) return handler(...args, context);
    return bound.lane.run(() => handler(...args, context));
  }

  #errorAnswer(id: JsonRpcId, error: JsonRpcErrorObject): Answer {
    const text = this.#serialize(errorResponse(id, error));
    return { text, bytes: Buffer.byteLength(text), code: error.code };
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

function reply(batch: boolean, answers: Answer[]): RpcReply {
  let bytes = batch ? answers.length + 1 : 0; // the brackets and the commas
  for (const answer of answers) bytes += answer.bytes;
  const alone = !batch ? answers[0]?.code : undefined;
  return { batch, parts: answers.map((a) => a.text), bytes, status: alone === undefined ? 200 : httpStatusOf(alone) };
}
