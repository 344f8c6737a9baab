import { Level } from 'level';
import type { BlockHeader, CommitCertificate, EquivocationEvidence, Receipt, SignedProposal, SignedTx, SignedVote } from '../../consensus/index.js';
import type { StateWrite, ViewTransitionProof } from '../../contracts/index.js';

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

/** The receipt exactly as its block's receipts root hashed it: the stored one without where it was committed. */
export function receiptAsHashed(stored: StoredReceipt): Receipt {
  const { blockHeight: _height, blockHash: _hash, ...receipt } = stored;
  return receipt;
}

export interface ChainHead {
  height: number;
  hash: string;
}

/**
 * The block this node's validator locked on (precommitted) and its proof of
 * lock, kept before the precommit is signed: after a restart at the same
 * height, consensus resumes the lock with its block (see ResumeState).
 */
export interface LockRecord {
  height: number;
  round: number;
  proposal: SignedProposal;
  prevotes: SignedVote[];
}

/**
 * This validator's own signed votes at the height being decided, kept before
 * each is sent (the role of CometBFT's WAL): a restarted validator sends them
 * again, because the others may be waiting for them in that round.
 */
export interface OwnVotesRecord {
  height: number;
  votes: SignedVote[];
}

/**
 * Key layout (one level database, string keys, JSON text values):
 *   meta:genesis        genesis hash, to refuse another chain's data
 *   meta:head           {height, hash} of the last committed block
 *   b:<height, 16 hex>  StoredBlock
 *   bh:<hash>           height
 *   t:<tx hash>         StoredTx
 *   r:<tx hash>         StoredReceipt
 *   s:<state key>       the enclave's state, opaque to the host (the enclave checks it against the head's state root)
 *   meta:lock           LockRecord of the height being decided (overwritten each lock)
 *   meta:votes          OwnVotesRecord of the height being decided (overwritten at each own vote)
 *   e:<validator>/<height>/<round>/<step>   EquivocationEvidence, kept forever
 *   a:<node id>         until when that peer's enclave counts as attested (ms since the epoch)
 *   la:<vote key>:<height, 16 hex>  the hash of that enclave's `attest` transaction committed at that height
 *   vt:<height, 16 hex> ViewTransitionProof: the block at that height changed the validators or the
 *                       policy; the new records proved under its state root (for proofs and ledger checks)
 * Each committed block is one atomic, synced batch: after a crash the store
 * holds every block up to meta:head and nothing of the next.
 */
const heightKey = (height: number): string => `b:${height.toString(16).padStart(16, '0')}`;
const transitionKey = (height: number): string => `vt:${height.toString(16).padStart(16, '0')}`;
const ledgerAttestationKey = (voteKey: string, height: number): string => `la:${voteKey}:${height.toString(16).padStart(16, '0')}`;

/** What a committed block adds beside its transactions, receipts and state. */
export interface BlockExtras {
  /** The block changed the validators or the policy: the new records, proved. */
  viewTransition?: ViewTransitionProof | null;
  /** Validators' `attest` transactions it committed (successfully), for proofs to find. */
  ledgerAttestations?: { voteKey: string; txHash: string }[];
}

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

  async getReceipts(hashes: readonly string[]): Promise<(StoredReceipt | undefined)[]> {
    const values = await this.#db.getMany(hashes.map((h) => `r:${h}`));
    return values.map((v) => (v === undefined ? undefined : (JSON.parse(v) as StoredReceipt)));
  }

  /** The last `attest` transaction (its hash and height) of this enclave committed at or below `height`. */
  async ledgerAttestationAt(voteKey: string, height: number): Promise<{ height: number; txHash: string } | undefined> {
    for await (const [key, txHash] of this.#db.iterator({ gte: ledgerAttestationKey(voteKey, 0), lte: ledgerAttestationKey(voteKey, height), reverse: true, limit: 1 })) {
      return { height: parseInt(key.slice(key.lastIndexOf(':') + 1), 16), txHash };
    }
    return undefined;
  }

  /** The governance changes of the validators or the policy at heights in [fromHeight, belowHeight), in height order, at most `limit`. */
  async viewTransitions(belowHeight = Number.MAX_SAFE_INTEGER, fromHeight = 0, limit = Infinity): Promise<ViewTransitionProof[]> {
    const out: ViewTransitionProof[] = [];
    const range = { gte: transitionKey(fromHeight), lt: transitionKey(Math.min(belowHeight, 2 ** 52)), ...(Number.isFinite(limit) ? { limit } : {}) };
    for await (const value of this.#db.values(range)) out.push(JSON.parse(value) as ViewTransitionProof);
    return out;
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

  /** Keeps the lock record durably (synced): it must survive a crash right after the precommit is signed. */
  async putLock(record: LockRecord): Promise<void> {
    await this.#db.put('meta:lock', JSON.stringify(record), { sync: true });
  }

  getLock(): Promise<LockRecord | undefined> {
    return this.#getJson<LockRecord>('meta:lock');
  }

  /** Keeps this validator's signed votes of the height being decided, synced: they must survive a crash right after one is sent. */
  async putOwnVotes(record: OwnVotesRecord): Promise<void> {
    await this.#db.put('meta:votes', JSON.stringify(record), { sync: true });
  }

  getOwnVotes(): Promise<OwnVotesRecord | undefined> {
    return this.#getJson<OwnVotesRecord>('meta:votes');
  }

  /** Records until when a peer's enclave counts as attested (0: no longer). Not synced: losing it costs only liveness. */
  async putAttestation(nodeId: string, until: number): Promise<void> {
    if (until > 0) await this.#db.put(`a:${nodeId}`, String(until));
    else await this.#db.del(`a:${nodeId}`);
  }

  async attestations(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for await (const [key, value] of this.#db.iterator({ gt: 'a:', lt: 'a;' })) out.set(key.slice(2), Number(value));
    return out;
  }

  /** Keeps equivocation evidence durably; false when evidence for that slot and validator is already kept. */
  async putEvidence(key: string, evidence: EquivocationEvidence): Promise<boolean> {
    if ((await this.#db.get(`e:${key}`)) !== undefined) return false;
    await this.#db.put(`e:${key}`, JSON.stringify(evidence), { sync: true });
    return true;
  }

  /** Every piece of equivocation evidence kept, in key order. */
  async listEvidence(limit = 10_000): Promise<EquivocationEvidence[]> {
    const out: EquivocationEvidence[] = [];
    for await (const [, value] of this.#db.iterator({ gt: 'e:', lt: 'e;', limit })) out.push(JSON.parse(value) as EquivocationEvidence);
    return out;
  }

  /** Writes one committed block and everything it changed in one atomic, synced batch. */
  async commitBlock(
    block: StoredBlock,
    txs: readonly SignedTx[],
    receipts: readonly Receipt[],
    writeSet: readonly StateWrite[],
    extras: BlockExtras = {},
  ): Promise<void> {
    const batch = this.#db.batch();
    const { viewTransition, ledgerAttestations = [] } = extras;
    if (viewTransition) batch.put(transitionKey(viewTransition.height), JSON.stringify(viewTransition));
    for (const { voteKey, txHash } of ledgerAttestations) batch.put(ledgerAttestationKey(voteKey, block.header.height), txHash);
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
