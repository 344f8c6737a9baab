import { Worker } from 'node:worker_threads';
import { toHex, type JsonValue, type TxLimits } from '../../consensus/index.js';
import type { Generation } from './consortium-keys.js';
import type { AdmissionResult } from './protocol.js';

/** A sealed transaction as a verifier thread opened it (result key in hex), or why it does not open. */
export type WorkerOpened = { method: string; args: JsonValue[]; resultKey: string } | { code: 'DECRYPT_FAILED'; message: string };

export type VerifierMessage =
  | { type: 'check'; chainId: string; limits: TxLimits; txs: unknown[] }
  | { type: 'keys'; keys: [generation: number, privateKey: string, publicKey: string][] };

export interface VerifierReply {
  results: AdmissionResult[];
  /** Per transaction: null unless it is sealed to a generation the thread holds. Stays inside the enclave. */
  opened: (WorkerOpened | null)[];
}

/**
 * Threads of the enclave program that verify transaction signatures in
 * parallel, and open sealed transactions with the network keys they are
 * given. A batch is split evenly across them; results come back in input order.
 */
export class VerifierPool {
  readonly #workers: Worker[];
  #nextId = 1;
  readonly #pending = new Map<number, (reply: VerifierReply) => void>();
  #next = 0;

  constructor(size: number) {
    this.#workers = Array.from({ length: Math.max(1, size) }, () => {
      const worker = new Worker(new URL('./verifier-worker.js', import.meta.url));
      worker.on('message', (message: { id: number; bytes: Uint8Array }) => {
        const resolve = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        resolve?.(JSON.parse(new TextDecoder().decode(message.bytes)) as VerifierReply);
      });
      worker.unref();
      return worker;
    });
  }

  /** The usable generations' network keys (messages are ordered, so every later check has them). */
  setKeys(generations: readonly Generation[]): void {
    const keys = generations.map((g): [number, string, string] => [g.generation, toHex(g.network.privateKey), toHex(g.network.publicKey)]);
    for (const worker of this.#workers) this.#post(worker, 0, { type: 'keys', keys });
  }

  #post(worker: Worker, id: number, message: VerifierMessage): void {
    const bytes = new TextEncoder().encode(JSON.stringify({ id, ...message }));
    worker.postMessage({ id, bytes }, [bytes.buffer]);
  }

  #run(worker: Worker, chainId: string, limits: TxLimits, txs: unknown[]): Promise<VerifierReply> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.#post(worker, id, { type: 'check', chainId, limits, txs });
    });
  }

  async check(chainId: string, limits: TxLimits, txs: unknown[]): Promise<VerifierReply> {
    if (txs.length === 0) return { results: [], opened: [] };
    // Small batches go to one thread (round robin); large ones are split across all.
    const parts = txs.length < 64 ? 1 : this.#workers.length;
    const size = Math.ceil(txs.length / parts);
    const jobs: Promise<VerifierReply>[] = [];
    for (let i = 0; i < parts; i++) {
      const worker = this.#workers[(this.#next++) % this.#workers.length]!;
      jobs.push(this.#run(worker, chainId, limits, txs.slice(i * size, (i + 1) * size)));
    }
    const replies = await Promise.all(jobs);
    return { results: replies.flatMap((r) => r.results), opened: replies.flatMap((r) => r.opened) };
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}
