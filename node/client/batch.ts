import { ClientError, RpcError } from './errors.js';
import type { RpcMethodName, RpcParams, RpcResult } from './methods.js';

/** One request's outcome in a batch. */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: RpcError };

/** Refers to one request added to a batch; carries its result type. */
export interface BatchHandle<T> {
  readonly index: number;
  /** Type-only marker. */
  readonly __result?: T;
}

export interface BatchEntry {
  method: string;
  params: unknown[];
}

/** The outcomes of a sent batch, in the order requests were added. */
export class BatchResults {
  constructor(readonly list: readonly Settled<unknown>[]) {}

  get length(): number {
    return this.list.length;
  }

  get<T>(handle: BatchHandle<T>): Settled<T> {
    const settled = this.list[handle.index];
    if (!settled) throw new RangeError(`no batch entry ${handle.index}`);
    return settled as Settled<T>;
  }

  /** The value, or throws the entry's RpcError. */
  value<T>(handle: BatchHandle<T>): T {
    const settled = this.get(handle);
    if (!settled.ok) throw settled.error;
    return settled.value;
  }
}

/**
 * Collects requests to send in one HTTP call:
 *   const batch = client.batch();
 *   const handles = txs.map((tx) => batch.add('chain_sendTransaction', tx));
 *   const results = await batch.send();     // results.get(handles[0]) → Settled<string>
 * The server invokes the handlers in the order added.
 */
export class RpcBatch {
  readonly #entries: BatchEntry[] = [];
  #sent = false;

  constructor(private readonly sendEntries: (entries: readonly BatchEntry[]) => Promise<Settled<unknown>[]>) {}

  get size(): number {
    return this.#entries.length;
  }

  add<M extends RpcMethodName>(method: M, ...params: RpcParams<M>): BatchHandle<RpcResult<M>> {
    if (this.#sent) throw new Error('this batch was already sent');
    this.#entries.push({ method, params: [...params] });
    return { index: this.#entries.length - 1 };
  }

  /** Sends every request in one HTTP call. Rejects (RpcError / ClientError) only when the batch as a whole fails. */
  async send(): Promise<BatchResults> {
    if (this.#sent) throw new Error('this batch was already sent');
    this.#sent = true;
    if (this.#entries.length === 0) return new BatchResults([]);
    const settled = await this.sendEntries(this.#entries);
    if (settled.length !== this.#entries.length) throw new ClientError('protocol', 'batch answer does not match the requests');
    return new BatchResults(settled);
  }
}
