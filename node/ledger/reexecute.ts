import { randomBytes } from 'node:crypto';
import { ChainError, headerHash, isSealedTx } from '../../consensus/index.js';
import { Enclave, type EnclavePlatform, type InitResponse } from '../../contracts/index.js';
import { LedgerError } from './verifier.js';
import type { LedgerBlock } from './types.js';
import type { Genesis } from '../../consensus/index.js';

/**
 * `ledger verify --reexecute`: every block executed again by an enclave of
 * this program, in this process, from the genesis (its contracts deployed and
 * initialised as the genesis block did), and checked as a validator checks a
 * proposal: every header field, and the tx, receipts and state roots against
 * its own execution. The enclave needs no identity of the consortium: it
 * proposes and signs nothing, and its reports are never shown to anyone.
 *
 * A confidential transaction opens only with the consortium secret, which
 * only the consortium's enclaves hold: re-execution stops at the first block
 * that has one, and says so (the blocks before it were re-executed).
 */
export class LedgerReexecutor {
  #enclave: Enclave | undefined;
  #stoppedAt: { height: number; reason: string } | null = null;
  #executed = 0;

  private constructor(private readonly genesis: Genesis) {}

  static async create(genesis: Genesis): Promise<LedgerReexecutor> {
    const self = new LedgerReexecutor(genesis);
    // A throwaway platform: the sealing key is random (nothing is sealed to disk), the report says it is a replay.
    const key = new Uint8Array(randomBytes(32));
    const platform: EnclavePlatform = {
      getReport: async () => ({ platform: 'virtual', measurement: '00'.repeat(48), evidence: new Uint8Array(0) }),
      getSealingKey: async () => key,
    };
    self.#enclave = await Enclave.create(platform);
    await self.#enclave.handle({ type: 'unseal', sealed: [] });
    return self;
  }

  /** Where re-execution stopped early (a confidential transaction), or null. */
  get stoppedAt(): { height: number; reason: string } | null {
    return this.#stoppedAt;
  }

  /** Blocks re-executed after the genesis block. */
  get executed(): number {
    return this.#executed;
  }

  /** Re-executes one block (already checked by LedgerVerifier, so it extends the last one). */
  async add(block: LedgerBlock): Promise<void> {
    if (this.#stoppedAt || !this.#enclave) return;
    const height = block.header.height;
    const fail = (message: string): never => {
      throw new LedgerError(height, 'REEXECUTION', message);
    };
    if (height === 0) {
      const init = (await this.#enclave.handle({ type: 'init', genesis: this.genesis, nodeId: 'ledger-reexecution', freshness: 'ledger-reexecution', resume: null })) as InitResponse;
      if (headerHash(init.genesisBlock!.header) !== headerHash(block.header)) {
        fail('the genesis block is not the one this genesis makes (its contracts deployed and initialised here give another state or receipts root)');
      }
      return;
    }
    if (block.txs.some((tx) => isSealedTx(tx))) {
      this.#stoppedAt = { height, reason: 'it holds confidential transactions, which only the consortium\'s enclaves can open' };
      return;
    }
    try {
      await this.#enclave.handle({ type: 'executeBlock', header: block.header, txs: block.txs });
      await this.#enclave.handle({ type: 'commitBlock', blockHash: headerHash(block.header), certificate: block.certificate });
    } catch (err) {
      if (err instanceof ChainError) fail(`re-executed here, ${err.message}`);
      throw err;
    }
    this.#executed++;
  }

  async close(): Promise<void> {
    await this.#enclave?.dispose();
    this.#enclave = undefined;
  }
}
