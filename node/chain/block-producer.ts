import {
  ChainError,
  headerHash,
  verifyCertificate,
  type BlockHeader,
  type CommitCertificate,
  type ConsensusParams,
  type SignedTx,
} from '../../consensus/index.js';
import type { BlockResult } from '../../contracts/index.js';
import type { EnclaveHost } from '../enclave/enclave-host.js';
import type { Logger } from '../log/logger.js';
import type { Mempool } from '../mempool/mempool.js';
import type { Clock } from './clock.js';

export interface ProducerHooks {
  /** The last block committed in the enclave (the next block's parent). */
  tip(): BlockHeader;
  /** Runs right after the enclave committed a block: nonces and the mempool move on. */
  applied(result: BlockResult, txs: SignedTx[]): void;
  /** Makes a committed block durable; resolves once it is on disk and served. */
  persist(result: BlockResult, certificate: CommitCertificate, txs: SignedTx[]): Promise<void>;
}

/**
 * The single-validator proposer (n = 1): cuts a block when the mempool holds a
 * full block or when the block interval has passed since the first waiting
 * transaction, has the enclave execute and sign it, checks the enclave's
 * signature as a one-signature commit certificate, and commits.
 *
 * Pipelined: while block h is written to disk, block h+1 already executes.
 * Writes stay in order (h+1 is written only after h), and a block's receipts
 * are served only once it is durable.
 */
export class BlockProducer {
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #persisting: Promise<void> = Promise.resolve();

  constructor(
    private readonly enclave: EnclaveHost,
    private readonly mempool: Mempool,
    private readonly params: ConsensusParams,
    private readonly clock: Clock,
    private readonly hooks: ProducerHooks,
    private readonly validatorKey: () => string,
    private readonly log: Logger,
    private readonly onFatal: (err: Error) => void,
  ) {}

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run().catch((err: unknown) => this.#fail(err));
  }

  #fail(err: unknown): void {
    this.#running = false;
    this.mempool.wakeAll();
    this.onFatal(err instanceof Error ? err : new Error(String(err)));
  }

  /** Stops after the block in progress (if any) is committed and written. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    this.mempool.wakeAll();
    await this.#loop;
    await this.#persisting.catch(() => {});
  }

  async #waitFor(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wake = undefined;
  }

  async #run(): Promise<void> {
    while (this.#running) {
      await this.mempool.whenNotEmpty();
      if (!this.#running) break;
      // Give a non-full block a moment to fill, so blocks are not one transaction each under load.
      if (this.mempool.size < this.params.maxBlockTxs) await this.#waitFor(this.params.blockIntervalMs);
      if (!this.#running) break;
      await this.#produceOne();
    }
  }

  async #produceOne(): Promise<void> {
    const txs = this.mempool.take(this.params.maxBlockTxs, this.params.maxBlockBytes);
    if (txs.length === 0) return;
    const parent = this.hooks.tip();
    const started = performance.now();
    const result = await this.enclave.proposeBlock({ parent, time: Math.max(this.clock.now(), parent.time), txs });
    const executed = performance.now();
    if (result.header.parentHash !== headerHash(parent) || result.header.height !== parent.height + 1) {
      throw new ChainError('BLOCK_INVALID', 'the enclave built on another parent');
    }
    const certificate: CommitCertificate = {
      height: result.header.height,
      round: 0,
      blockHash: result.blockHash,
      signatures: [result.precommit],
    };
    if (!verifyCertificate(result.header.chainId, certificate, [this.validatorKey()], 1)) {
      throw new ChainError('CERTIFICATE_INVALID', 'the enclave precommit does not verify');
    }
    const blockTxs = result.included.map((position) => {
      const tx = txs[position];
      if (!tx) throw new ChainError('BLOCK_INVALID', 'the enclave included a transaction it was not given');
      return tx;
    });
    await this.enclave.commitBlock(result.blockHash);
    this.hooks.applied(result, blockTxs);
    // Refused transactions leave the mempool too: they can never be included as they are.
    this.mempool.remove(
      result.txHashes,
      result.excluded.filter((e) => e.code !== 'BLOCK_FULL').map((e) => e.txHash),
    );
    if (result.excluded.length > 0) {
      this.log.warn('enclave left transactions out', { count: result.excluded.length, first: result.excluded[0]?.code });
    }
    // Write in order, but let the next block execute meanwhile. At most one write waits.
    const previous = this.#persisting;
    await previous;
    this.#persisting = this.hooks.persist(result, certificate, blockTxs).then(() => {
      this.log.debug('block timing', {
        height: result.header.height,
        txs: blockTxs.length,
        executeMs: Math.round(executed - started),
        durableMs: Math.round(performance.now() - executed),
      });
    });
    this.#persisting.catch((err: unknown) => this.#fail(err));
  }
}
