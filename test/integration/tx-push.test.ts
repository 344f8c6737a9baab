/**
 * A node hands the transactions its clients send to its peers by acknowledged
 * push, and pushes again what no peer took. Here a node alone (its three peers
 * stopped) acknowledges a transaction; when a peer returns it gets the
 * transaction, so the transaction outlives the node that acknowledged it
 * (kill -9) and commits once a quorum is back. The node's
 * cloister_tx_unreplicated gauge shows it until the peer acknowledges it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Ed25519Signer, generateEd25519KeyPair, signTx } from '../../consensus/index.js';
import { Consortium, cleanupConsortia, waitUntil } from '../helpers/consortium.js';

/** The node's cloister_tx_unreplicated gauge. */
async function unreplicated(c: Consortium, i: number): Promise<number> {
  const text = await (await fetch(`${c.rpcUrl(i)}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('cloister_tx_unreplicated '));
  if (!line) throw new Error('no cloister_tx_unreplicated in /metrics');
  return Number(line.split(' ')[1]);
}

afterEach((ctx) => cleanupConsortia({ printLogs: ctx.task.result?.state === 'fail' }), 30_000);

describe('acknowledged transaction push (4 real node processes)', () => {
  it('a transaction acknowledged by a node with no peer reaches the first peer back, and commits after that node is killed', async () => {
    const c = await Consortium.create({ nodes: 4 });
    await c.startAll();
    await c.waitForHeights([1, 2, 3, 4], 2);
    for (const i of [2, 3, 4]) await c.stop(i);

    const signer = new Ed25519Signer(generateEd25519KeyPair().privateKey);
    const tx = signTx({ chainId: c.chainId, from: signer.publicKey, nonce: 0, contract: 'counter', method: 'increment', args: [], gasLimit: 1_000_000 }, signer);
    // No peer to hold it: answered after the node's wait for one, and kept.
    const hash = await c.client(1).sendTransaction(tx);
    expect((await c.client(1).getTransaction(hash))?.blockHeight).toBeNull();
    // The operator sees it: acknowledged, held by too few peers.
    expect(await unreplicated(c, 1)).toBe(1);

    // Node 2 comes back without it (its mempool is volatile) and gets it pushed again once admitted.
    await c.start(2);
    await waitUntil(async () => (await c.client(2).getTransaction(hash)) !== null, 30_000, 'node 2 to hold the transaction');
    // Node 1 learns it from node 2's acknowledgement (the peer's answer that it holds it).
    await waitUntil(async () => (await unreplicated(c, 1)) === 0, 10_000, 'node 1 to count the transaction as replicated');
    await c.kill(1);

    await c.startAll([3, 4]);
    await waitUntil(async () => (await c.client(2).getTransactionReceipt(hash)) !== null, 60_000, 'the transaction to commit without node 1');
    const receipt = await c.client(3).getTransactionReceipt(hash);
    expect(receipt?.status).toBe('success');
  }, 150_000);
});
