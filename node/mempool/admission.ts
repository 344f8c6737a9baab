import { ChainError, isSealedTx, parseSignedTx, type ChainErrorCode, type SignedTx } from '../../consensus/index.js';
import type { AdmissionResult } from '../../contracts/index.js';
import type { Mempool } from './mempool.js';

export interface AdmissionDeps {
  chainId: string;
  maxGasLimit: number;
  mempool: Mempool;
  /** Checks signatures (and size) inside the enclave; one result per transaction, in order. */
  verify(txs: SignedTx[]): Promise<AdmissionResult[]>;
  /** Throws TX_UNKNOWN_CONTRACT / TX_UNKNOWN_METHOD. */
  /** `method` is null for a sealed transaction (its method is checked in the enclave). */
  checkTarget(contract: string, method: string | null): void;
  /** The sender's committed next nonce as far as the host knows (0 when it does not know yet). */
  committedNonce(sender: string): number;
  /** The enclave reported a sender's committed next nonce (with its admission verdict). */
  learnNonce(sender: string, nonce: number): void;
  /** Most transactions waiting for the enclave's verdict at once. */
  maxQueued?: number;
}

interface Waiting {
  tx: SignedTx;
  resolve(hash: string): void;
  reject(err: unknown): void;
}

/** Most transactions in one admission ecall. */
const BATCH = 1024;

/**
 * The way into the mempool. Cheap checks run at once on the host (shape, chain,
 * gas limit, contract and method, a nonce already used); the signature is
 * checked by the enclave, batched: everything submitted in one turn of the event
 * loop goes to the enclave in one message. Verdicts are applied in submission
 * order, so one sender's consecutive nonces are accepted in order even when
 * batches are verified in parallel.
 */
export class TxAdmission {
  #queue: Waiting[] = [];
  #scheduled = false;
  #inFlight = 0;
  #applied: Promise<void> = Promise.resolve();

  constructor(private readonly deps: AdmissionDeps) {}

  submit(raw: unknown): Promise<string> {
    const { deps } = this;
    const tx = parseSignedTx(raw);
    if (tx.chainId !== deps.chainId) {
      throw new ChainError('TX_WRONG_CHAIN', `transaction is for chain "${tx.chainId}", this is "${deps.chainId}"`, {
        expected: deps.chainId,
        got: tx.chainId,
      });
    }
    if (tx.gasLimit > deps.maxGasLimit) {
      throw new ChainError('TX_GAS_LIMIT', `gasLimit ${tx.gasLimit} exceeds the maximum ${deps.maxGasLimit}`, { limit: deps.maxGasLimit });
    }
    deps.checkTarget(tx.contract, isSealedTx(tx) ? null : tx.method);
    const expected = deps.mempool.nextNonce(tx.from, deps.committedNonce(tx.from));
    if (tx.nonce < expected) {
      throw new ChainError('TX_NONCE_TOO_LOW', `nonce ${tx.nonce} is already used; the sender's next nonce is ${expected}`, { expected });
    }
    if (deps.mempool.full) {
      throw new ChainError('MEMPOOL_FULL', 'the mempool is full; retry later');
    }
    if (this.#queue.length + this.#inFlight >= (deps.maxQueued ?? 10_000)) {
      throw new ChainError('MEMPOOL_FULL', 'too many transactions are waiting for admission; retry later');
    }
    return new Promise<string>((resolve, reject) => {
      this.#queue.push({ tx, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, BATCH);
      this.#inFlight += batch.length;
      // Verification starts now (in parallel with other batches); results apply in order.
      const verdicts = this.deps.verify(batch.map((w) => w.tx)).then(
        (results) => ({ results }),
        (error: unknown) => ({ error }),
      );
      this.#applied = this.#applied.then(async () => {
        const outcome = await verdicts;
        this.#inFlight -= batch.length;
        if ('error' in outcome) {
          for (const w of batch) w.reject(outcome.error);
          return;
        }
        this.#apply(batch, outcome.results);
      });
    }
  }

  #apply(batch: Waiting[], results: AdmissionResult[]): void {
    for (let i = 0; i < batch.length; i++) {
      const waiting = batch[i]!;
      const result = results[i];
      if (!result) {
        waiting.reject(new ChainError('ENCLAVE_UNAVAILABLE', 'the enclave gave no verdict'));
      } else if (!result.ok) {
        waiting.reject(new ChainError(result.code as ChainErrorCode, result.message));
      } else {
        try {
          this.deps.learnNonce(waiting.tx.from, result.nonce);
          this.deps.mempool.add({ tx: waiting.tx, hash: result.hash, size: result.size }, this.deps.committedNonce(waiting.tx.from));
          waiting.resolve(result.hash);
        } catch (err) {
          waiting.reject(err);
        }
      }
    }
  }
}
