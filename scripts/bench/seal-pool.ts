import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { VerifiedEncryptionKey } from '../../node/client/index.js';
import type { PreparedTx } from './load.js';

/** What one seal-worker.ts thread seals: for each sender, `count` transfers to `to` with nonces 0, 1, … */
export interface SealWork {
  chainId: string;
  contract: string;
  method: string;
  amount: number;
  gasLimit: number;
  key: { generation: number; publicKey: string; nodeId: string; measurement: string };
  senders: { privateKey: string; to: string; count: number }[];
}

/**
 * Seals and signs `counts[s]` transfers from every sender s (private keys in
 * hex) to the next sender, before the load: sealing (a fresh X25519 key
 * agreement and HPKE key schedule per transaction, then the signature) costs
 * several times a bare signature, so it is spread over the machine's cores.
 * Returns each sender's transactions in nonce order, hashed (load.ts prepare).
 */
export async function sealTransfers(
  o: Omit<SealWork, 'key' | 'senders'> & { key: VerifiedEncryptionKey; privateKeys: string[]; publicKeys: string[]; counts: number[] },
): Promise<PreparedTx[][]> {
  const n = o.privateKeys.length;
  const threads = Math.max(1, Math.min(availableParallelism(), n));
  const key = { generation: o.key.generation, publicKey: Buffer.from(o.key.publicKey).toString('hex'), nodeId: o.key.nodeId, measurement: o.key.measurement };
  const parts = await Promise.all(
    Array.from({ length: threads }, (_, w) => {
      // Worker w takes senders w, w + threads, …
      const mine = Array.from({ length: Math.ceil((n - w) / threads) }, (_, k) => w + k * threads);
      const work: SealWork = {
        chainId: o.chainId,
        contract: o.contract,
        method: o.method,
        amount: o.amount,
        gasLimit: o.gasLimit,
        key,
        senders: mine.map((s) => ({ privateKey: o.privateKeys[s]!, to: o.publicKeys[(s + 1) % n]!, count: o.counts[s]! })),
      };
      return new Promise<{ senders: number[]; txs: PreparedTx[][] }>((resolve, reject) => {
        const worker = new Worker(new URL('./seal-worker.js', import.meta.url), { workerData: work });
        worker.once('message', (txs: PreparedTx[][]) => resolve({ senders: mine, txs }));
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`a sealing worker exited (${code}) before it answered`)));
      });
    }),
  );
  const bySender: PreparedTx[][] = new Array(n);
  for (const { senders, txs } of parts) senders.forEach((s, k) => (bySender[s] = txs[k]!));
  return bySender;
}
