/**
 * A worker of seal-pool.ts: seals and signs the transfers of some senders
 * (sealTransaction), with their hashes; each sender's in one sealing session,
 * as the typed client does.
 */
import '../../node/polyfills.js';
import { parentPort, workerData } from 'node:worker_threads';
import { Ed25519Signer } from '../../consensus/index.js';
import { SealingSession, sealTransaction } from '../../node/client/index.js';
import { prepare, type PreparedTx } from './load.js';
import type { SealWork } from './seal-pool.js';

const work = workerData as SealWork;
const key = { ...work.key, publicKey: new Uint8Array(Buffer.from(work.key.publicKey, 'hex')) };
const out: PreparedTx[][] = work.senders.map(({ privateKey, to, count }) => {
  const signer = new Ed25519Signer(privateKey);
  const txs: PreparedTx[] = [];
  const session = new SealingSession(key.publicKey);
  for (let nonce = 0; nonce < count; nonce++) {
    const body = { chainId: work.chainId, from: signer.publicKey, nonce, contract: work.contract, method: work.method, args: [to, work.amount], gasLimit: work.gasLimit };
    txs.push(prepare(sealTransaction(body, signer, key, session).tx));
  }
  return txs;
});
parentPort!.postMessage(out);
