import { Worker } from 'node:worker_threads';
import type { TxLimits } from '../../consensus/index.js';
import type { AdmissionResult } from './protocol.js';

/**
 * Threads of the enclave program that verify transaction signatures in parallel.
 * A batch is split evenly across them; results come back in input order.
 */
export class VerifierPool {
  readonly #workers: Worker[];
  #nextId = 1;
  readonly #pending = new Map<number, (results: AdmissionResult[]) => void>();
  #next = 0;

  constructor(size: number) {
    this.#workers = Array.from({ length: Math.max(1, size) }, () => {
      const worker = new Worker(new URL('./verifier-worker.js', import.meta.url));
      worker.on('message', (message: { id: number; bytes: Uint8Array }) => {
        const resolve = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        resolve?.(JSON.parse(new TextDecoder().decode(message.bytes)) as AdmissionResult[]);
      });
      worker.unref();
      return worker;
    });
  }

  #run(worker: Worker, chainId: string, limits: TxLimits, txs: unknown[]): Promise<AdmissionResult[]> {
    const id = this.#nextId++;
    const bytes = new TextEncoder().encode(JSON.stringify({ id, chainId, limits, txs }));
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      worker.postMessage({ id, bytes }, [bytes.buffer]);
    });
  }

  async check(chainId: string, limits: TxLimits, txs: unknown[]): Promise<AdmissionResult[]> {
    if (txs.length === 0) return [];
    // Small batches go to one thread (round robin); large ones are split across all.
    const parts = txs.length < 64 ? 1 : this.#workers.length;
    const size = Math.ceil(txs.length / parts);
    const jobs: Promise<AdmissionResult[]>[] = [];
    for (let i = 0; i < parts; i++) {
      const worker = this.#workers[(this.#next++) % this.#workers.length]!;
      jobs.push(this.#run(worker, chainId, limits, txs.slice(i * size, (i + 1) * size)));
    }
    return (await Promise.all(jobs)).flat();
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}
