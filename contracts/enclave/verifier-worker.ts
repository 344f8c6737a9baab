/**
 * A signature-verification thread of the enclave program: checks batches of
 * transactions (shape, size, chain, gas, ed25519 signature) and opens sealed
 * ones with the network keys the main thread gives it, so that the enclave's
 * main thread stays free to execute blocks. Part of the enclave program: what
 * it opens goes back to the main thread only, never to the host.
 */
import { parentPort } from 'node:worker_threads';
import { ChainError, OpeningSessions, checkTxStateless, fromHex, isSealedTx, openTxPayload, toHex, type HpkeKeyPair, type TxLimits } from '../../consensus/index.js';
import type { AdmissionResult } from './protocol.js';
import { lowerThisThreadPriority } from './thread-priority.js';
import type { VerifierMessage, VerifierReply, WorkerOpened } from './verifier-pool.js';

// Admission yields to block execution when both want a core (thread-priority.ts).
lowerThisThreadPriority();

const decoder = new TextDecoder();
const encoder = new TextEncoder();
/** The usable network keys, by generation. */
let networks = new Map<number, HpkeKeyPair>();
/** Senders' sealing sessions: one X25519 agreement per session, not per transaction. */
const sessions = new OpeningSessions();

function check(job: { chainId: string; limits: TxLimits; txs: unknown[] }): VerifierReply {
  const opened: (WorkerOpened | null)[] = [];
  const results: AdmissionResult[] = job.txs.map((raw) => {
    opened.push(null);
    try {
      const { tx, hash, size } = checkTxStateless(raw, job.chainId, job.limits);
      if (isSealedTx(tx)) {
        const network = networks.get(tx.sealed.generation);
        // Without the key the main thread decides (an unknown generation, or a secret not held yet).
        if (network) {
          try {
            const call = openTxPayload(network, { chainId: tx.chainId, from: tx.from, nonce: tx.nonce, contract: tx.contract }, tx.sealed, sessions);
            opened[opened.length - 1] = { method: call.method, args: call.args, resultKey: toHex(call.resultKey) };
          } catch (err) {
            if (!(err instanceof ChainError)) throw err;
            opened[opened.length - 1] = { code: 'DECRYPT_FAILED', message: err.message };
          }
        }
      }
      // The sender's nonce is filled in by the enclave's main thread, which holds the state.
      return { ok: true, hash, size, nonce: 0 };
    } catch (err) {
      const code = err instanceof ChainError ? err.code : 'TX_MALFORMED';
      return { ok: false, code, message: err instanceof Error ? err.message : 'invalid transaction' };
    }
  });
  return { results, opened };
}

parentPort!.on('message', (message: { id: number; bytes: Uint8Array }) => {
  const m = JSON.parse(decoder.decode(message.bytes)) as VerifierMessage;
  if (m.type === 'keys') {
    networks = new Map(m.keys.map(([generation, privateKey, publicKey]) => [generation, { privateKey: fromHex(privateKey)!, publicKey: fromHex(publicKey)! }]));
    return;
  }
  const bytes = encoder.encode(JSON.stringify(check(m)));
  parentPort!.postMessage({ id: message.id, bytes }, [bytes.buffer]);
});
