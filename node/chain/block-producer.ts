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
  head(): BlockHeader;
  /** Persists and applies a committed block; resolves once it is durable. */
  commit(result: BlockResult, certificate: CommitCertificate, txs: SignedTx[]): Promise<void>;
}

/**
 * The single-validator proposer (n = 1): cuts a block when the mempool holds a
 * full block or when the block interval has passed since the first waiting
 * transaction, has the enclave execute and sign it, checks the enclave's
 * signature as a one-signature commit certificate, and commits.
 */
export class BlockProducer {
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;

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
    this.#loop = this.#run().catch((err: unknown) => {
      this.#running = false;
      this.onFatal(err instanceof Error ? err : new Error(String(err)));
    });
  }

  /** Stops after the block in progress (if any) is committed. */
  async stop(): Promise<void> {
    if (!this.#running) {
      await this.#loop;
      return;
    }
    this.#running = false;
    this.#wake?.();
    this.mempool.wakeAll();
    await this.#loop;
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
    const parent = this.hooks.head();
    const result = await this.enclave.proposeBlock({ parent, time: Math.max(this.clock.now(), parent.time), txs });
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
    await this.hooks.commit(result, certificate, blockTxs);
    // Refused transactions leave the mempool too: they can never be included as they are.
    this.mempool.remove(
      result.txHashes,
      result.excluded.filter((e) => e.code !== 'BLOCK_FULL').map((e) => e.txHash),
    );
    if (result.excluded.length > 0) {
      this.log.warn('enclave left transactions out', {
        count: result.excluded.length,
        first: result.excluded[0]?.code,
      });
    }
  }
}
