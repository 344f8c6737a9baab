import { randomBytes } from 'node:crypto';
import type { ContractEvent, JsonValue } from '../../consensus/index.js';
import type { BlockView, ReceiptView, TransactionView } from '../chain/api.js';
import { RpcFault } from './errors.js';
import type { RpcLogger } from './logger.js';
import type { RpcSession } from './session.js';

export const SUBSCRIPTION_KINDS = ['newHeads', 'receipts', 'events'] as const;
export type SubscriptionKind = (typeof SUBSCRIPTION_KINDS)[number];

/** The filter members each kind takes (all optional; a notification must match every one given). */
const FILTER_MEMBERS: Record<SubscriptionKind, readonly string[]> = {
  newHeads: [],
  receipts: ['contract', 'txHash'],
  events: ['contract', 'name'],
};

/** The method name of every notification (the eth_subscribe convention). */
export const NOTIFICATION_METHOD = 'chain_subscription';

/** One event of a committed transaction, as an `events` subscription delivers it. */
export interface EventNotification {
  blockHeight: number;
  blockHash: string;
  txHash: string;
  txIndex: number;
  eventIndex: number;
  contract: string;
  name: string;
  data: JsonValue;
}

/** What the hub reads of the chain; ChainService answers it (the node adapts onBlock to heights). */
export interface BlockFeed {
  /** Called with each committed block's height, in height order, once the block is served. */
  onBlock(listener: (height: number) => void): () => void;
  /** The height of the last block whose onBlock listeners ran. */
  blockNumber(): number;
  getBlockByNumber(height: number, fullTransactions: false): Promise<BlockView | null>;
  getTransaction(hash: string): Promise<TransactionView | null>;
  getTransactionReceipt(hash: string): Promise<ReceiptView | null>;
}

/** Where one connection's notifications go: a WebSocket, or a fake in tests. */
export interface NotificationSink {
  send(text: string): void;
  /** Bytes sent but not yet taken by the client. */
  readonly bufferedAmount: number;
  close(code: number, reason: string): void;
}

export interface SubscriptionHubOptions {
  maxSubscriptionsPerSocket: number;
  maxSocketBufferedBytes: number;
  logger: RpcLogger;
}

/** Close code for a consumer that fell too far behind (policy violation). */
export const CLOSE_TOO_SLOW = 1008;
/** Close code when the hub cannot read a committed block: better no subscription than one with a gap. */
export const CLOSE_FEED_FAILED = 1011;

interface Filter {
  contract?: string;
  txHash?: string;
  name?: string;
}

interface Subscription {
  readonly id: string;
  readonly kind: SubscriptionKind;
  readonly filter: Filter;
  /** Blocks up to this height were committed before the subscription: it starts with the next one. */
  readonly after: number;
  /** Notifications held until the subscribe call's answer is sent (so that the id is known before its first notification); null once announced. */
  held: string[] | null;
}

/** One committed transaction, as the receipts subscriptions see it (serialized once for all of them). */
interface CommittedTx {
  receipt: ReceiptView;
  /** The contract the transaction called. */
  contract: string;
  json: string;
}

/** One event of a block, serialized once for every events subscription. */
interface BlockEvent {
  event: EventNotification;
  json: string;
}

/**
 * Subscriptions of every WebSocket connection, fed by committed blocks.
 *
 * Every block is delivered in height order, with no gap and no duplicate: the
 * chain's onBlock listener only queues the height (so it never slows a
 * commit), and one loop reads each queued block (and its receipts, when a
 * subscription wants them) and notifies every subscription made before the
 * block committed. A connection whose client does not take what is sent
 * (more than maxSocketBufferedBytes queued) is closed and its subscriptions
 * dropped; the others are not held up, since sending never waits.
 */
export class SubscriptionHub {
  readonly #feed: BlockFeed;
  readonly #options: SubscriptionHubOptions;
  readonly #sessions = new Set<HubSession>();
  readonly #queue: number[] = [];
  #draining = false;
  #stopped = false;
  readonly #unfollow: () => void;
  /** Settles when the delivery loop is idle (tests await it). */
  #idle: Promise<void> = Promise.resolve();

  constructor(feed: BlockFeed, options: SubscriptionHubOptions) {
    this.#feed = feed;
    this.#options = options;
    this.#unfollow = feed.onBlock((height) => this.#enqueue(height));
  }

  /** Subscriptions open now, all connections together. */
  get subscriptions(): number {
    let count = 0;
    for (const session of this.#sessions) count += session.size;
    return count;
  }

  /** A connection's subscriptions; `close()` it when the connection closes. */
  open(sink: NotificationSink): HubSession {
    const session = new HubSession(this, sink, this.#options);
    this.#sessions.add(session);
    return session;
  }

  /** Resolves once every block queued so far was delivered. */
  settled(): Promise<void> {
    return this.#idle;
  }

  /** Stops following the chain; the sessions are closed by their connections. */
  stop(): void {
    this.#stopped = true;
    this.#unfollow();
    this.#queue.length = 0;
  }

  /** @internal */
  forget(session: HubSession): void {
    this.#sessions.delete(session);
  }

  /** @internal */
  head(): number {
    return this.#feed.blockNumber();
  }

  #enqueue(height: number): void {
    if (this.#stopped || this.subscriptions === 0) return;
    this.#queue.push(height);
    if (!this.#draining) this.#idle = this.#drain();
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      for (let height = this.#queue.shift(); height !== undefined; height = this.#queue.shift()) {
        try {
          await this.#deliver(height);
        } catch (err) {
          this.#options.logger.error('subscriptions could not read a committed block: closing them', {
            height,
            error: err instanceof Error ? (err.stack ?? err.message) : String(err),
          });
          for (const session of [...this.#sessions]) session.drop(CLOSE_FEED_FAILED, 'the node could not read a committed block');
        }
      }
    } finally {
      this.#draining = false;
    }
  }

  async #deliver(height: number): Promise<void> {
    const due = [...this.#sessions].filter((session) => session.dueAt(height));
    if (due.length === 0) return;
    const block = await this.#feed.getBlockByNumber(height, false);
    if (!block) throw new Error(`block ${height} is not in the store`);
    const needsTxs = due.some((session) => session.wantsTxs(height));
    const txs = needsTxs ? await this.#committedTxs(block) : [];
    const events = eventsOf(block, txs).map((event) => ({ event, json: JSON.stringify(event) }));
    const blockJson = JSON.stringify(block);
    for (const session of due) session.deliver(height, blockJson, txs, events);
  }

  async #committedTxs(block: BlockView): Promise<CommittedTx[]> {
    const hashes = block.transactions as string[];
    return Promise.all(
      hashes.map(async (hash) => {
        const [tx, receipt] = await Promise.all([this.#feed.getTransaction(hash), this.#feed.getTransactionReceipt(hash)]);
        if (!tx || !receipt) throw new Error(`transaction ${hash} of block ${block.height} is not in the store`);
        return { receipt, contract: tx.contract, json: JSON.stringify(receipt) };
      }),
    );
  }
}

/** The subscriptions of one connection. */
export class HubSession implements RpcSession {
  readonly #subs = new Map<string, Subscription>();
  #heldBytes = 0;
  #closed = false;

  constructor(
    private readonly hub: SubscriptionHub,
    private readonly sink: NotificationSink,
    private readonly options: SubscriptionHubOptions,
  ) {}

  get size(): number {
    return this.#subs.size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  subscribe(kind: string, filter: Record<string, unknown> | undefined): string {
    if (this.#closed) throw RpcFault.of('SERVER_BUSY', { reason: 'the connection is closing' });
    const checked = checkSubscription(kind, filter);
    const limit = this.options.maxSubscriptionsPerSocket;
    if (this.#subs.size >= limit) throw RpcFault.of('TOO_MANY_SUBSCRIPTIONS', { limit });
    const id = randomBytes(16).toString('hex');
    this.#subs.set(id, { id, ...checked, after: this.hub.head(), held: [] });
    return id;
  }

  unsubscribe(id: string): boolean {
    return this.#subs.delete(id);
  }

  /** The subscribe call that made `id` was answered: its notifications flow from now on. */
  announce(id: string): void {
    const sub = this.#subs.get(id);
    if (!sub || sub.held === null) return;
    const held = sub.held;
    sub.held = null;
    for (const text of held) {
      this.#heldBytes -= text.length;
      this.sink.send(text);
    }
    this.#checkBacklog();
  }

  /** @internal True when a subscription of this connection wants block `height`. */
  dueAt(height: number): boolean {
    for (const sub of this.#subs.values()) if (sub.after < height) return true;
    return false;
  }

  /** @internal */
  wantsTxs(height: number): boolean {
    for (const sub of this.#subs.values()) if (sub.after < height && sub.kind !== 'newHeads') return true;
    return false;
  }

  /** @internal Sends block `height`'s notifications to every subscription made before it. */
  deliver(height: number, blockJson: string, txs: readonly CommittedTx[], events: readonly BlockEvent[]): void {
    for (const sub of this.#subs.values()) {
      if (sub.after >= height) continue;
      if (sub.kind === 'newHeads') this.#notify(sub, blockJson);
      else if (sub.kind === 'receipts') {
        for (const tx of txs) if (matchesReceipt(sub.filter, tx.receipt, tx.contract)) this.#notify(sub, tx.json);
      } else {
        for (const { event, json } of events) if (matchesEvent(sub.filter, event)) this.#notify(sub, json);
      }
      if (this.#closed) return;
    }
    this.#checkBacklog();
  }

  /** Drops every subscription and closes the connection with `code`. */
  drop(code: number, reason: string): void {
    if (this.#closed) return;
    this.close();
    this.sink.close(code, reason);
  }

  /** The connection closed: its subscriptions go. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#subs.clear();
    this.#heldBytes = 0;
    this.hub.forget(this);
  }

  #notify(sub: Subscription, resultJson: string): void {
    const text = `{"jsonrpc":"2.0","method":"${NOTIFICATION_METHOD}","params":{"subscription":"${sub.id}","result":${resultJson}}}`;
    if (sub.held) {
      sub.held.push(text);
      this.#heldBytes += text.length;
    } else this.sink.send(text);
  }

  /** A client that does not take what it is sent is dropped, rather than held in the node's memory. */
  #checkBacklog(): void {
    const limit = this.options.maxSocketBufferedBytes;
    const backlog = this.sink.bufferedAmount + this.#heldBytes;
    if (backlog <= limit) return;
    this.options.logger.warn('WebSocket dropped: its client does not take its notifications', { backlog, limit });
    this.drop(CLOSE_TOO_SLOW, `too slow: more than ${limit} bytes waiting`);
  }
}

/** Kind and filter, checked; throws INVALID_PARAMS naming what is wrong, so that nothing is created. */
function checkSubscription(kind: string, filter: Record<string, unknown> | undefined): { kind: SubscriptionKind; filter: Filter } {
  if (!(SUBSCRIPTION_KINDS as readonly string[]).includes(kind)) {
    throw RpcFault.of('INVALID_PARAMS', { param: 'kind', reason: `unknown subscription kind; one of ${SUBSCRIPTION_KINDS.join(', ')}` });
  }
  const k = kind as SubscriptionKind;
  const allowed = FILTER_MEMBERS[k];
  for (const [member, value] of Object.entries(filter ?? {})) {
    if (!allowed.includes(member)) {
      const takes = allowed.length === 0 ? 'takes no filter' : `filters only by ${allowed.join(', ')}`;
      throw RpcFault.of('INVALID_PARAMS', { param: 'filter', path: `/${member}`, reason: `${kind} ${takes}` });
    }
    if (typeof value !== 'string') throw RpcFault.of('INVALID_PARAMS', { param: 'filter', path: `/${member}`, reason: 'must be a string' });
  }
  return { kind: k, filter: { ...(filter as Filter | undefined) } };
}

function matchesReceipt(filter: Filter, receipt: ReceiptView, contract: string): boolean {
  return (filter.contract === undefined || filter.contract === contract) && (filter.txHash === undefined || filter.txHash === receipt.txHash);
}

function matchesEvent(filter: Filter, event: EventNotification): boolean {
  return (filter.contract === undefined || filter.contract === event.contract) && (filter.name === undefined || filter.name === event.name);
}

function eventsOf(block: BlockView, txs: readonly CommittedTx[]): EventNotification[] {
  return txs.flatMap(({ receipt }) =>
    receipt.events.map((event: ContractEvent, eventIndex) => ({
      blockHeight: block.height,
      blockHash: block.hash,
      txHash: receipt.txHash,
      txIndex: receipt.index,
      eventIndex,
      contract: event.contract,
      name: event.name,
      data: event.data,
    })),
  );
}
