import type { BlockView, ReceiptView } from '../chain/api.js';
import type { EventNotification } from '../rpc/subscriptions.js';
import { asErrorObject, ClientError, RpcError } from './errors.js';

export type { EventNotification } from '../rpc/subscriptions.js';

/** What each kind delivers. */
export interface SubscriptionResults {
  newHeads: BlockView;
  receipts: ReceiptView;
  events: EventNotification;
}

export type SubscriptionKind = keyof SubscriptionResults;

/** receipts: { contract?, txHash? } (the contract the transaction called); events: { contract?, name? }; newHeads: none. */
export interface SubscriptionFilter {
  contract?: string;
  txHash?: string;
  name?: string;
}

/** How a subscription ended: its socket closed (code and reason as the node sent them), or failed. */
export interface SubscriptionEnd {
  code: number;
  reason: string;
  /** Set when the socket failed rather than closed cleanly (e.g. the node was unreachable). */
  error?: ClientError;
}

export interface Subscription {
  readonly id: string;
  /** Ends the subscription; resolves with whether the node still had it. */
  unsubscribe(): Promise<boolean>;
  /**
   * Resolves when no more notifications will come: the socket closed (the
   * node stopped, or dropped a client too slow to take them: code 1008), or
   * after unsubscribe() once the socket has no subscription left.
   */
  readonly closed: Promise<SubscriptionEnd>;
}

/** The subset of the WebSocket API used here, met by the global WebSocket (Node 22+, browsers) and by the `ws` package. */
interface SocketLike {
  readonly readyState: number;
  send(text: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'close' | 'error' | 'message', listener: (event: never) => void): void;
}
type SocketConstructor = new (url: string) => SocketLike;

const OPEN = 1;

async function socketConstructor(): Promise<SocketConstructor> {
  const global = (globalThis as { WebSocket?: SocketConstructor }).WebSocket;
  if (global) return global;
  // Node 20 has no global WebSocket.
  const { WebSocket } = await import('ws');
  return WebSocket as unknown as SocketConstructor;
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  method: string;
}

interface Listener {
  deliver(result: unknown): void;
  end(end: SubscriptionEnd): void;
}

/**
 * One WebSocket to a node, shared by the client's subscriptions: calls with
 * ids, and `chain_subscription` notifications routed by subscription id.
 */
export class SubscriptionSocket {
  readonly #socket: SocketLike;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Map<string, Listener>();
  #nextId = 1;
  #end: SubscriptionEnd | undefined;
  readonly ended: Promise<SubscriptionEnd>;

  private constructor(socket: SocketLike) {
    this.#socket = socket;
    this.ended = new Promise((resolve) => {
      let failure: ClientError | undefined;
      socket.addEventListener('error', () => {
        failure = new ClientError('network', 'the WebSocket failed');
      });
      socket.addEventListener('close', (event: { code: number; reason: string }) => {
        const end: SubscriptionEnd = { code: event.code, reason: event.reason, ...(failure ? { error: failure } : {}) };
        this.#end = end;
        for (const pending of this.#pending.values()) pending.reject(end.error ?? new ClientError('network', `the WebSocket closed (${end.code} ${end.reason})`));
        this.#pending.clear();
        for (const listener of this.#listeners.values()) listener.end(end);
        this.#listeners.clear();
        resolve(end);
      });
    });
    socket.addEventListener('message', (event: { data: unknown }) => this.#onMessage(event.data));
  }

  /** Opens a socket to the node at `httpUrl` (its RPC URL); rejects with ClientError('network') when it cannot. */
  static async open(httpUrl: string, timeoutMs: number): Promise<SubscriptionSocket> {
    const Socket = await socketConstructor();
    const socket = new Socket(httpUrl.replace(/^http/, 'ws'));
    const opened = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new ClientError('timeout', `no WebSocket to ${httpUrl} within ${timeoutMs} ms`));
        socket.close();
      }, timeoutMs);
      socket.addEventListener('open', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.addEventListener('close', () => {
        clearTimeout(timer);
        reject(new ClientError('network', `could not open a WebSocket to ${httpUrl}`));
      });
    });
    const wrapped = new SubscriptionSocket(socket);
    await opened;
    return wrapped;
  }

  get isOpen(): boolean {
    return this.#end === undefined && this.#socket.readyState === OPEN;
  }

  /** A JSON-RPC call over the socket. */
  call(method: string, params: unknown[]): Promise<unknown> {
    if (!this.isOpen) return Promise.reject(new ClientError('network', 'the WebSocket is closed'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, method });
      this.#socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  async subscribe(kind: SubscriptionKind, filter: SubscriptionFilter | undefined, onNotification: (result: unknown) => void): Promise<Subscription> {
    const id = (await this.call('chain_subscribe', filter === undefined ? [kind] : [kind, filter])) as string;
    let finish!: (end: SubscriptionEnd) => void;
    const closed = new Promise<SubscriptionEnd>((resolve) => (finish = resolve));
    // The node sends a subscription's notifications only after the answer that carries its id.
    this.#listeners.set(id, { deliver: onNotification, end: finish });
    return {
      id,
      closed,
      unsubscribe: async () => {
        if (!this.#listeners.delete(id)) return false;
        const existed = this.isOpen ? ((await this.call('chain_unsubscribe', [id])) as boolean) : false;
        finish({ code: 1000, reason: 'unsubscribed' });
        // The last subscription gone: the socket would only keep the process alive.
        if (this.#listeners.size === 0 && this.#pending.size === 0) this.close();
        return existed;
      },
    };
  }

  close(): void {
    if (this.#end === undefined) this.#socket.close(1000, 'done');
  }

  #onMessage(data: unknown): void {
    let message: { id?: unknown; method?: unknown; params?: { subscription?: unknown; result?: unknown }; result?: unknown; error?: unknown };
    try {
      message = JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data as Uint8Array)) as typeof message;
    } catch {
      return;
    }
    if (message.method === 'chain_subscription' && typeof message.params?.subscription === 'string') {
      this.#listeners.get(message.params.subscription)?.deliver(message.params.result);
      return;
    }
    const pending = typeof message.id === 'number' ? this.#pending.get(message.id) : undefined;
    if (!pending) return;
    this.#pending.delete(message.id as number);
    const error = asErrorObject(message.error);
    if (error) pending.reject(new RpcError(error, pending.method));
    else if ('result' in message) pending.resolve(message.result);
    else pending.reject(new ClientError('protocol', `unexpected answer to ${pending.method}`));
  }
}
