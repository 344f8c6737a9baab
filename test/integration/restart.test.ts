import { afterAll, describe, expect, it } from 'vitest';
import { isSealedTx, signTx, type SignedTx } from '../../consensus/index.js';
import { CloisterClient, type BlockView, type TransactionView } from '../../node/client/index.js';
import { rpcBatch } from '../../scripts/bench/rpc.js';
import { cleanupNodes, runCli, startNode, tempDir } from '../helpers/dev-node.js';
import { execute, newSigner } from '../helpers/tx.js';

afterAll(cleanupNodes);

/** Every committed block from 1 to the head, with full transactions. */
async function allBlocks(client: CloisterClient): Promise<BlockView[]> {
  const head = await client.blockNumber();
  const blocks: BlockView[] = [];
  for (let h = 0; h <= head; h++) blocks.push((await client.getBlockByNumber(h, true))!);
  return blocks;
}

function countCounterIncrements(blocks: BlockView[]): number {
  return blocks.reduce(
    (n, b) => n + (b.transactions as TransactionView[]).filter((t) => t.contract === 'counter' && !isSealedTx(t) && t.method === 'increment').length,
    0,
  );
}

describe('crash safety', () => {
  it('loses no committed transaction when killed with SIGKILL under load', async () => {
    const dataDir = tempDir();
    const node = await startNode(dataDir);
    const client = new CloisterClient(node.rpcUrl);
    const { chainId } = await client.status();
    const senders = Array.from({ length: 16 }, () => newSigner());
    const nonces = senders.map(() => 0);
    const acknowledged = new Map<string, string>(); // tx hash -> block hash seen in its receipt
    const sent: string[] = [];
    let stop = false;

    // Load: batches of increments from every sender, as fast as the node takes them.
    const load = (async () => {
      while (!stop) {
        const batch: SignedTx[] = senders.map((s, i) =>
          signTx({ chainId, from: s.publicKey, nonce: nonces[i]!++, contract: 'counter', method: 'increment', args: [], gasLimit: 100_000 }, s),
        );
        try {
          const replies = await rpcBatch(node.rpcUrl, batch.map((tx) => ({ method: 'chain_sendTransaction', params: [tx] })));
          for (const r of replies) if (typeof r.result === 'string') sent.push(r.result);
        } catch {
          return; // the node is gone
        }
      }
    })();

    // Watch receipts until enough are acknowledged as committed, then kill mid-load.
    while (acknowledged.size < 300) {
      const pending = sent.filter((h) => !acknowledged.has(h)).slice(0, 200);
      if (pending.length === 0) {
        await new Promise((r) => setImmediate(r));
        continue;
      }
      const replies = await rpcBatch(node.rpcUrl, pending.map((h) => ({ method: 'chain_getTransactionReceipt', params: [h] })));
      for (const r of replies) {
        const receipt = r.result as { txHash: string; blockHash: string } | null;
        if (receipt) acknowledged.set(receipt.txHash, receipt.blockHash);
      }
    }
    await node.kill('SIGKILL');
    stop = true;
    await load;

    const again = await startNode(dataDir);
    const client2 = new CloisterClient(again.rpcUrl);
    for (const [hash, blockHash] of acknowledged) {
      const receipt = await client2.getTransactionReceipt(hash);
      expect(receipt?.blockHash).toBe(blockHash);
    }
    // The chain is whole: each block links to its parent, and the state matches the blocks.
    const blocks = await allBlocks(client2);
    for (let i = 1; i < blocks.length; i++) expect(blocks[i]!.parentHash).toBe(blocks[i - 1]!.hash);
    expect((await client2.call('counter', 'get', [])).result).toBe(countCounterIncrements(blocks));
    // And it goes on committing.
    expect((await execute(client2, newSigner(), 'counter', 'increment')).status).toBe('success');
    await again.stop();
  });

  it('stops cleanly on SIGTERM and resumes with all blocks and state', async () => {
    const dataDir = tempDir();
    const node = await startNode(dataDir);
    const client = new CloisterClient(node.rpcUrl);
    const alice = newSigner();
    for (let i = 0; i < 3; i++) expect((await execute(client, alice, 'counter', 'increment')).status).toBe('success');
    const before = await client.getBlockByNumber(await client.blockNumber());
    await node.stop();
    expect(node.process.exitCode).toBe(0);

    const again = await startNode(dataDir);
    const client2 = new CloisterClient(again.rpcUrl);
    const head = await client2.getBlockByNumber(before!.height);
    expect(head?.hash).toBe(before!.hash);
    expect((await client2.call('counter', 'get', [])).result).toBe(3);
    expect(await client2.getNonce(alice.publicKey)).toBe(3);
    expect((await execute(client2, alice, 'counter', 'increment')).status).toBe('success');
    expect((await client2.call('counter', 'get', [])).result).toBe(4);
  });

  it('exits with one clear line, and nothing left running, when its RPC port is taken', async () => {
    const node = await startNode();
    const port = new URL(node.rpcUrl).port;
    const second = await runCli(['dev', '--data', tempDir(), '--rpc-port', port]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/^error: .*EADDRINUSE/m);
    // The first node is unaffected.
    expect((await new CloisterClient(node.rpcUrl).status()).chainId).toBe('cloister-dev');
  });
});

describe('state at rest is checked by the enclave', () => {
  it('a node whose database was edited by hand refuses to start instead of certifying blocks on it', async () => {
    const dataDir = tempDir();
    const node = await startNode(dataDir);
    const client = new CloisterClient(node.rpcUrl);
    const receipt = await execute(client, newSigner(), 'counter', 'increment');
    expect(receipt.status).toBe('success');
    await node.stop();

    // The operator (or anyone with the disk) changes one value of the enclave's state.
    const { Level } = await import('level');
    const db = new Level<string, string>(`${dataDir}/db`, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    expect(await db.get('s:c:counter:value')).toBe('1');
    await db.put('s:c:counter:value', '1000000');
    await db.close();

    await expect(startNode(dataDir)).rejects.toThrow(/STATE_INVALID|does not match the state root/);
  });
});
