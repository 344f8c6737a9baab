import {
  ChainError,
  isHexOfLength,
  type SignedTx,
  type CommitCertificate,
  type ProposalBlock,
} from '../../consensus/index.js';
import type { ChainView } from '../../contracts/index.js';
import type { ChainService } from '../chain/chain-service.js';
import type { EnclaveHost } from '../enclave/enclave-host.js';
import type { Logger } from '../log/logger.js';
import type { NetworkService } from '../network/index.js';
import { parseJsonBytes } from '../network/index.js';
import type { ChainStore } from '../storage/chain-store.js';
import { checkCertifiedBlock, type CertifiedBlock } from './certified-block.js';

export interface BlockSyncOptions {
  /** The chain view whose validators certify the blocks synced. */
  view: () => ChainView;
  chain: ChainService;
  store: ChainStore;
  enclave: EnclaveHost;
  network: NetworkService;
  /** Blocks are served to, and taken from, admitted peers only. */
  admittedPeer(peerId: string): boolean;
  /** A synced block is committed: consensus moves to the next height. */
  onSynced(block: ProposalBlock, certificate: CommitCertificate): void;
  log: Logger;
}

type SyncRequest = { type: 'status' } | { type: 'blocks'; from: number; count: number } | { type: 'txs'; hashes: string[] };

type SyncedBlock = CertifiedBlock;

/** Most blocks per response, and roughly most bytes (the transport caps responses at 16 MiB). */
const MAX_BLOCKS_PER_RESPONSE = 32;
const RESPONSE_BUDGET_BYTES = 8 * 1024 * 1024;

/** A status request refused or lost is asked again this many times, after 300 ms, 600 ms, … up to 3 s. */
const STATUS_ATTEMPTS = 8;
const STATUS_RETRY_MS = 300;
const STATUS_RETRY_MAX_MS = 3000;

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

const encoder = new TextEncoder();
const encode = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));

/**
 * Block sync over the request/response protocol. A node that is behind (it
 * was down, or is new) fetches the committed blocks it misses from an
 * admitted peer, checks each block's commit certificate against the genesis
 * validators (2f+1 enclave precommits for exactly this header), re-executes it
 * in its own enclave (the roots must match), commits it, and hands it to
 * consensus, which then joins at the next height.
 */
export class BlockSync {
  readonly #o: BlockSyncOptions;
  #running = false;
  #syncing = false;
  /** The best height a peer is known to have, and which peer. */
  #target: { height: number; peer: string } | null = null;
  /** Peers that answered a status request since this node started (what they had then). */
  readonly #heard = new Map<string, number>();

  constructor(options: BlockSyncOptions) {
    this.#o = options;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#o.network.handle((peer, request) => this.#serve(peer, request));
  }

  stop(): void {
    this.#running = false;
    this.#o.network.handle(undefined);
  }

  get syncing(): boolean {
    return this.#syncing;
  }

  /** No sync under way and no peer known to be ahead. */
  get caughtUp(): boolean {
    return !this.#syncing && (this.#target === null || this.#target.height <= this.#o.chain.tip.height);
  }

  /** Has this peer told us its height since we started? */
  heardFrom(peer: string): boolean {
    return this.#heard.has(peer);
  }

  /** A peer has committed at least `height`: fetch what we miss from it. */
  hint(height: number, peer: string): void {
    if (!this.#running || height <= this.#o.chain.tip.height) return;
    if (!this.#target || height > this.#target.height) this.#target = { height, peer };
    if (!this.#syncing) void this.#run();
  }

  /** Asks a peer how far it is and syncs if it is ahead (after the peer is admitted). */
  async checkPeer(peer: string): Promise<void> {
    // Right after a restart the peer may not have admitted us yet and refuse: ask again a few times, with backoff.
    for (let attempt = 0; attempt < STATUS_ATTEMPTS && this.#running && this.#o.admittedPeer(peer); attempt++) {
      if (attempt > 0) await delay(Math.min(STATUS_RETRY_MAX_MS, STATUS_RETRY_MS * 2 ** (attempt - 1)));
      try {
        const reply = await this.#o.network.request(peer, encode({ type: 'status' } satisfies SyncRequest));
        const parsed = parseJsonBytes(reply);
        const height = parsed.ok ? (parsed.value as { height?: unknown })?.height : undefined;
        if (typeof height === 'number' && Number.isSafeInteger(height)) {
          this.#heard.set(peer, height);
          this.hint(height, peer);
          return;
        }
      } catch (err) {
        this.#o.log.debug('sync status request failed', { peer, attempt, error: (err as Error).message });
      }
    }
  }

  async #serve(peer: string, request: Uint8Array): Promise<Uint8Array> {
    if (!this.#o.admittedPeer(peer)) return encode({ error: 'NOT_ADMITTED' });
    const parsed = parseJsonBytes(request);
    const req = (parsed.ok ? parsed.value : null) as Partial<SyncRequest> | null;
    if (req?.type === 'status') return encode({ height: this.#o.chain.blockNumber() });
    if (req?.type === 'txs') return this.#serveTxs(req.hashes);
    if (req?.type !== 'blocks' || !Number.isSafeInteger(req.from) || !Number.isSafeInteger(req.count) || req.from! < 1 || req.count! < 1) {
      return encode({ error: 'BAD_REQUEST' });
    }
    const blocks: SyncedBlock[] = [];
    let bytes = 0;
    const last = Math.min(this.#o.chain.blockNumber(), req.from! + Math.min(req.count!, MAX_BLOCKS_PER_RESPONSE) - 1);
    for (let h = req.from!; h <= last && bytes < RESPONSE_BUDGET_BYTES; h++) {
      const block = await this.#o.store.getBlock(h);
      if (!block?.certificate) break;
      const stored = await this.#o.store.getTxs(block.txHashes);
      const txs = stored.map((s) => s!.tx);
      blocks.push({ header: block.header, txs, certificate: block.certificate });
      bytes += JSON.stringify(txs).length + 2048;
    }
    return encode({ blocks });
  }

  /** Transactions by hash, from the mempool or the committed chain (a peer rebuilding a compact proposal). */
  async #serveTxs(hashes: unknown): Promise<Uint8Array> {
    const max = this.#o.view().consensus.maxBlockTxs;
    if (!Array.isArray(hashes) || hashes.length > max || !hashes.every((h) => isHexOfLength(h, 32))) return encode({ error: 'BAD_REQUEST' });
    const mempool = this.#o.chain.mempool;
    const txs: (SignedTx | null)[] = hashes.map((h: string) => mempool.get(h) ?? this.#o.chain.proposalTx(h) ?? null);
    const absent = hashes.filter((_: string, i: number) => txs[i] === null);
    if (absent.length > 0) {
      const stored = await this.#o.store.getTxs(absent);
      let k = 0;
      for (let i = 0; i < txs.length; i++) if (txs[i] === null) txs[i] = stored[k++]?.tx ?? null;
    }
    return encode({ txs });
  }

  /** Asks an admitted peer for transactions by hash; null where it has none. The caller checks each hash. */
  async fetchTxs(peer: string, hashes: string[]): Promise<(SignedTx | null)[]> {
    if (!this.#o.admittedPeer(peer)) return hashes.map(() => null);
    const reply = parseJsonBytes(await this.#o.network.request(peer, encode({ type: 'txs', hashes } satisfies SyncRequest)));
    const txs = reply.ok ? (reply.value as { txs?: unknown }).txs : undefined;
    return Array.isArray(txs) ? hashes.map((_, i) => (typeof txs[i] === 'object' && txs[i] !== null ? (txs[i] as SignedTx) : null)) : hashes.map(() => null);
  }

  async #run(): Promise<void> {
    this.#syncing = true;
    try {
      while (this.#running && this.#target && this.#target.height > this.#o.chain.tip.height) {
        const { peer, height } = this.#target;
        const progressed = await this.#fetchOnce(peer, height);
        if (!progressed) {
          // That peer cannot help now (not admitted yet, gone, or misbehaving): wait for the next hint.
          this.#target = null;
          break;
        }
      }
    } finally {
      this.#syncing = false;
    }
  }

  /** Fetches and applies one batch; false if nothing could be applied. */
  async #fetchOnce(peer: string, target: number): Promise<boolean> {
    const { chain, network, log } = this.#o;
    if (!this.#o.admittedPeer(peer)) return false;
    const from = chain.tip.height + 1;
    const count = Math.min(MAX_BLOCKS_PER_RESPONSE, target - from + 1);
    let reply: Uint8Array;
    try {
      reply = await network.request(peer, encode({ type: 'blocks', from, count } satisfies SyncRequest));
    } catch (err) {
      log.debug('sync request failed', { peer, error: (err as Error).message });
      return false;
    }
    const parsed = parseJsonBytes(reply);
    const blocks = parsed.ok ? (parsed.value as { blocks?: unknown }).blocks : undefined;
    if (!Array.isArray(blocks) || blocks.length === 0) return false;
    let applied = 0;
    for (const raw of blocks) {
      if (!this.#running) break;
      const block = raw as Partial<SyncedBlock>;
      if (!block?.header || typeof block.header !== 'object') break;
      if (block.header.height <= chain.tip.height) continue; // consensus committed it meanwhile
      const view = this.#o.view();
      const problem = checkCertifiedBlock(block, chain.tip, view.chainId, view.validatorKeys, view.quorum);
      if (problem) {
        log.warn('peer sent a block that does not verify', { peer, height: block.header.height, problem });
        return applied > 0;
      }
      const { header, txs, certificate } = block as SyncedBlock;
      try {
        const result = await this.#o.enclave.executeBlock({ header, txs });
        if (chain.tip.height >= header.height) continue;
        if (result.blockHash !== certificate.blockHash) throw new ChainError('BLOCK_INVALID', 'the re-executed block has another hash');
        await chain.commitExecuted(result, certificate, txs);
      } catch (err) {
        if (chain.tip.height >= header.height) continue;
        if (err instanceof ChainError && err.code === 'SECRET_UNAVAILABLE') {
          // Not a disagreement: this enclave waits for the consortium secret (the secret service is fetching it).
          log.info('waiting for the consortium secret to execute a synced block', { height: header.height });
          return applied > 0;
        }
        // 2f+1 enclaves certified a block ours computes differently: do not commit it; report loudly.
        log.error('certified block failed re-execution', { height: header.height, error: (err as Error).message });
        return applied > 0;
      }
      applied++;
      this.#o.onSynced({ header, txs }, certificate);
    }
    if (applied > 0) log.info('synced blocks', { peer, upTo: chain.tip.height, target });
    return applied > 0;
  }
}
