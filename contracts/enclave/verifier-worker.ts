/**
 * A signature-verification thread of the enclave program: checks batches of
 * transactions (shape, size, chain, gas, ed25519 signature) so that the
 * enclave's main thread stays free to execute blocks.
 */
import { parentPort } from 'node:worker_threads';
import { ChainError, checkTxStateless, type TxLimits } from '../../consensus/index.js';
import type { AdmissionResult } from './protocol.js';

interface Job {
  id: number;
  chainId: string;
  limits: TxLimits;
  txs: unknown[];
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

parentPort!.on('message', (message: { id: number; bytes: Uint8Array }) => {
  const job = JSON.parse(decoder.decode(message.bytes)) as Job;
  const results: AdmissionResult[] = job.txs.map((raw) => {
    try {
      const { hash, size } = checkTxStateless(raw, job.chainId, job.limits);
      // The sender's nonce is filled in by the enclave's main thread, which holds the state.
      return { ok: true, hash, size, nonce: 0 };
    } catch (err) {
      const code = err instanceof ChainError ? err.code : 'TX_MALFORMED';
      return { ok: false, code, message: err instanceof Error ? err.message : 'invalid transaction' };
    }
  });
  const bytes = encoder.encode(JSON.stringify(results));
  parentPort!.postMessage({ id: message.id, bytes }, [bytes.buffer]);
});
