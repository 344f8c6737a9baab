import { Level } from 'level';
import type { BlockHeader, CommitCertificate, Receipt, SignedTx } from '../../consensus/index.js';
import type { StateWrite } from '../../contracts/index.js';

/** How a block is kept: the header, its transactions' hashes and its commit certificate. */
export interface StoredBlock {
  hash: string;
  header: BlockHeader;
  txHashes: string[];
  certificate: CommitCertificate | null;
}

export interface StoredTx {
  tx: SignedTx;
  height: number;
  blockHash: string;
  index: number;
}

export interface StoredReceipt extends Receipt {
  blockHeight: number;
  blockHash: string;
}

export interface ChainHead {
  height: number;
  hash: string;
}

/**
 * Key layout (one level database, string keys, JSON text values):
 *   meta:genesis        genesis hash, to refuse another chain's data
 *   meta:head           {height, hash} of the last committed block
 *   b:<height, 16 hex>  StoredBlock
 *   bh:<hash>           height
 *   t:<tx hash>         StoredTx
 *   r:<tx hash>         StoredReceipt
 *   s:<state key>       canonical JSON value of the enclave state
 * Each committed block is one atomic, synced batch: after a crash the store
 * holds every block up to meta:head and nothing of the next.
 */
const heightKey = (height: number): string => `b:${height.toString(16).padStart(16, '0')}`;

export class ChainStore {
  readonly #db: Level<string, string>;
  #open = false;

  constructor(readonly path: string) {
    this.#db = new Level<string, string>(path, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  }

  async open(): Promise<void> {
    if (this.#open) return;
    await this.#db.open();
    this.#open = true;
  }

  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    await this.#db.close();
  }

  async #getJson<T>(key: string): Promise<T | undefined> {
    const text = await this.#db.get(key);
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }

  getGenesisHash(): Promise<string | undefined> {
    return this.#db.get('meta:genesis');
  }

  async setGenesisHash(hash: string): Promise<void> {
    await this.#db.put('meta:genesis', hash, { sync: true });
  }

  getHead(): Promise<ChainHead | undefined> {
    return this.#getJson<ChainHead>('meta:head');
  }

  getBlock(height: number): Promise<StoredBlock | undefined> {
    return this.#getJson<StoredBlock>(heightKey(height));
  }

  async getBlockByHash(hash: string): Promise<StoredBlock | undefined> {
    const height = await this.#db.get(`bh:${hash}`);
    return height === undefined ? undefined : this.getBlock(Number(height));
  }

  getTx(hash: string): Promise<StoredTx | undefined> {
    return this.#getJson<StoredTx>(`t:${hash}`);
  }

  async getTxs(hashes: string[]): Promise<(StoredTx | undefined)[]> {
    const values = await this.#db.getMany(hashes.map((h) => `t:${h}`));
    return values.map((v) => (v === undefined ? undefined : (JSON.parse(v) as StoredTx)));
  }

  getReceipt(hash: string): Promise<StoredReceipt | undefined> {
    return this.#getJson<StoredReceipt>(`r:${hash}`);
  }

  /** Every state entry, in key order (for loading the enclave at start). */
  async *stateEntries(): AsyncGenerator<[string, string]> {
    for await (const [key, value] of this.#db.iterator({ gt: 's:', lt: 's;' })) {
      yield [key.slice(2), value];
    }
  }

  async readState(key: string): Promise<string | undefined> {
    return this.#db.get(`s:${key}`);
  }

  /** Writes one committed block and everything it changed in one atomic, synced batch. */
  async commitBlock(block: StoredBlock, txs: readonly SignedTx[], receipts: readonly Receipt[], writeSet: readonly StateWrite[]): Promise<void> {
    const batch = this.#db.batch();
    const { hash, header } = block;
    batch.put(heightKey(header.height), JSON.stringify(block));
    batch.put(`bh:${hash}`, String(header.height));
    for (let i = 0; i < txs.length; i++) {
      const txHash = block.txHashes[i]!;
      const stored: StoredTx = { tx: txs[i]!, height: header.height, blockHash: hash, index: i };
      batch.put(`t:${txHash}`, JSON.stringify(stored));
    }
    for (const receipt of receipts) {
      const stored: StoredReceipt = { ...receipt, blockHeight: header.height, blockHash: hash };
      batch.put(`r:${receipt.txHash}`, JSON.stringify(stored));
    }
    for (const [key, value] of writeSet) {
      if (value === null) batch.del(`s:${key}`);
      else batch.put(`s:${key}`, value);
    }
    batch.put('meta:head', JSON.stringify({ height: header.height, hash } satisfies ChainHead));
    await batch.write({ sync: true });
  }
}
