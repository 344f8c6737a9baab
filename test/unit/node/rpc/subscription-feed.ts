import type { BlockView, ReceiptView, TransactionView } from '../../../../node/chain/api.js';
import type { BlockFeed, NotificationSink } from '../../../../node/rpc/index.js';
import { h, HEADER, TX_VIEW, RECEIPT } from './fixtures.js';

/** One transaction of a fake block: the contract it called and the events it emitted. */
export interface FakeTx {
  contract: string;
  events?: { contract: string; name: string; data: unknown }[];
}

/**
 * A chain in memory that commits blocks on demand. Reads resolve after
 * `delayOf(height)` ms, so that a later block's reads may finish first.
 */
export class FakeFeed implements BlockFeed {
  head = 0;
  readonly #listeners = new Set<(height: number) => void>();
  readonly #blocks = new Map<number, { block: BlockView; txs: TransactionView[]; receipts: ReceiptView[] }>();
  delayOf: (height: number) => number = () => 0;

  commit(txs: FakeTx[] = []): number {
    const height = ++this.head;
    const hash = height.toString(16).padStart(64, '0');
    const txViews = txs.map((tx, index): TransactionView => ({ ...TX_VIEW, contract: tx.contract, hash: `${height}-${index}`.padEnd(64, 'a'), blockHeight: height, blockHash: hash, index }));
    const receipts = txViews.map((tx, index): ReceiptView => ({
      ...RECEIPT,
      txHash: tx.hash,
      blockHeight: height,
      blockHash: hash,
      index,
      events: (txs[index]!.events ?? []) as ReceiptView['events'],
    }));
    const block: BlockView = { hash, ...HEADER, height, transactions: txViews.map((t) => t.hash), certificate: null, header: { ...HEADER, height } };
    this.#blocks.set(height, { block, txs: txViews, receipts });
    for (const listener of this.#listeners) listener(height);
    return height;
  }

  onBlock(listener: (height: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  blockNumber(): number {
    return this.head;
  }
  async getBlockByNumber(height: number): Promise<BlockView | null> {
    await this.#wait(height);
    return this.#blocks.get(height)?.block ?? null;
  }
  async getTransaction(hash: string): Promise<TransactionView | null> {
    const height = Number(hash.split('-')[0]);
    await this.#wait(height);
    return this.#blocks.get(height)?.txs.find((t) => t.hash === hash) ?? null;
  }
  async getTransactionReceipt(hash: string): Promise<ReceiptView | null> {
    const height = Number(hash.split('-')[0]);
    await this.#wait(height);
    return this.#blocks.get(height)?.receipts.find((r) => r.txHash === hash) ?? null;
  }
  #wait(height: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, this.delayOf(height)));
  }
}

/** A connection's end: records what it was sent; a stalled one takes nothing, so its backlog grows. */
export class FakeSink implements NotificationSink {
  readonly sent: { subscription: string; result: unknown }[] = [];
  bufferedAmount = 0;
  stalled = false;
  closed: { code: number; reason: string } | undefined;

  send(text: string): void {
    if (this.stalled) this.bufferedAmount += text.length;
    const message = JSON.parse(text) as { method: string; params: { subscription: string; result: unknown } };
    if (message.method !== 'chain_subscription') throw new Error(`unexpected ${text}`);
    this.sent.push(message.params);
  }
  close(code: number, reason: string): void {
    this.closed = { code, reason };
  }
  of(id: string): unknown[] {
    return this.sent.filter((n) => n.subscription === id).map((n) => n.result);
  }
}

export { h };
