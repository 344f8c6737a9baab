import { Worker } from 'node:worker_threads';
import { ChainError } from '../../consensus/index.js';
import type { QueryCommit, QuerySnapshot } from './query-engine.js';
import type { QueryWorkerMessage, QueryWorkerReply } from './query-worker.js';
import type { CallRequest } from './protocol.js';
import type { KeysSnapshot } from './consortium-keys.js';

export interface QueryLaneOptions {
  /** The committed state now, to (re)start the call thread from. */
  snapshot(): QuerySnapshot;
  /** Most calls waiting or running at once; more are refused with ENCLAVE_BUSY. */
  maxPending?: number;
  /** A call not answered within this time is failed and the call thread is restarted. */
  deadlineMs?: number;
}

interface PendingCall {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * The main enclave thread's side of the call lane: forwards read-only calls to
 * the call thread, bounded in number and time. A call past its deadline (gas
 * bounds a call's time; this is the backstop for everything gas does not see)
 * fails with CALL_FAILED, and the thread is replaced by a fresh one loaded
 * from the current committed state, so no call can hold the lane for long.
 */
export class QueryLane {
  readonly #o: Required<QueryLaneOptions>;
  #worker: Worker | undefined;
  /** Started (after init): the call thread itself is made at the first call. */
  #started = false;
  #nextId = 1;
  readonly #pending = new Map<number, PendingCall>();
  #closed = false;

  constructor(options: QueryLaneOptions) {
    this.#o = { maxPending: 64, deadlineMs: 5_000, ...options };
  }

  /** Ready for calls (after init). The thread is made at the first call, so a node that serves none never pays for it. */
  start(): void {
    this.#started = true;
  }

  /** Makes the call thread, loaded from the committed state now. */
  #spawn(): void {
    if (this.#worker || this.#closed) return;
    const worker = new Worker(new URL('./query-worker.js', import.meta.url));
    worker.on('message', (reply: QueryWorkerReply) => this.#onReply(reply));
    worker.on('error', () => this.#restart('the call thread failed'));
    worker.unref();
    this.#worker = worker;
    this.#post({ kind: 'load', snapshot: this.#o.snapshot() });
    this.#post({ kind: 'keys', keys: this.#keys });
  }

  #keys: KeysSnapshot = { committed: [], held: [] };

  /** The consortium keys changed (a generation committed or received): calls to confidential contracts use them. */
  setKeys(keys: KeysSnapshot): void {
    this.#keys = keys;
    if (this.#worker) this.#post({ kind: 'keys', keys });
  }

  /** A block was committed: the call thread applies it before any later call. */
  committed(commit: QueryCommit): void {
    if (this.#worker) this.#post({ kind: 'commit', commit });
  }

  /** Runs a read-only call as `caller` (whose authorisation the enclave's main thread checked). */
  call(request: CallRequest, caller: string, gasLimit: number): Promise<unknown> {
    if (!this.#started || this.#closed) return Promise.reject(new ChainError('ENCLAVE_UNAVAILABLE', 'the call lane is not running'));
    this.#spawn();
    if (this.#pending.size >= this.#o.maxPending) {
      return Promise.reject(new ChainError('ENCLAVE_BUSY', `${this.#o.maxPending} calls are already running; retry later`));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new ChainError('CALL_FAILED', `the call did not finish within ${this.#o.deadlineMs} ms`, { contractCode: 'DEADLINE' }));
        this.#restart('a call passed its deadline');
      }, this.#o.deadlineMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#post({ kind: 'call', id, request, caller, gasLimit });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#failAll(new ChainError('ENCLAVE_UNAVAILABLE', 'the enclave is stopping'));
    const worker = this.#worker;
    this.#worker = undefined;
    await worker?.terminate();
  }

  #post(message: QueryWorkerMessage): void {
    this.#worker?.postMessage(message);
  }

  #onReply(reply: QueryWorkerReply): void {
    const call = this.#pending.get(reply.id);
    if (!call) return;
    this.#pending.delete(reply.id);
    clearTimeout(call.timer);
    if (reply.ok) call.resolve(reply.value);
    else call.reject(new ChainError(reply.error.code as ChainError['code'], reply.error.message, reply.error.details));
  }

  /** Replaces the call thread; the calls it held fail (they were behind the one that overran). */
  #restart(why: string): void {
    const old = this.#worker;
    this.#worker = undefined;
    void old?.terminate();
    this.#failAll(new ChainError('CALL_FAILED', `call lane restarted: ${why}`, { contractCode: 'DEADLINE' }));
    // The next call makes a fresh thread.
  }

  #failAll(err: Error): void {
    for (const call of this.#pending.values()) {
      clearTimeout(call.timer);
      call.reject(err);
    }
    this.#pending.clear();
  }
}
