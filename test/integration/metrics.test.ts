import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloisterClient } from '../../node/client/index.js';
import { cleanupNodes, startNode, tempDir, type TestNode } from '../helpers/dev-node.js';
import { execute, newSigner } from '../helpers/tx.js';

let node: TestNode;

beforeAll(async () => {
  node = await startNode(tempDir());
}, 60_000);

afterAll(async () => {
  await cleanupNodes();
});

/** One sample's value from GET /metrics (0 when the series has no sample yet). */
async function scrape(): Promise<(series: string) => number> {
  const res = await fetch(`${node.rpcUrl}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const lines = (await res.text()).split('\n');
  return (series) => {
    const line = lines.find((l) => l.startsWith(series + ' '));
    return line === undefined ? 0 : Number(line.slice(series.length + 1));
  };
}

describe('GET /metrics on a dev node', () => {
  it('follows the chain: height, admitted transactions, blocks, ecalls and RPC requests', async () => {
    const client = new CloisterClient(node.rpcUrl);
    const before = await scrape();
    const signer = newSigner();
    const first = await execute(client, signer, 'counter', 'increment');
    const second = await execute(client, signer, 'counter', 'increment');
    const after = await scrape();
    expect(after('cloister_chain_height')).toBeGreaterThanOrEqual(second.blockHeight);
    expect(after('cloister_chain_height')).toBeGreaterThan(before('cloister_chain_height'));
    expect(second.blockHeight).toBeGreaterThanOrEqual(first.blockHeight);
    expect(after('cloister_tx_admitted_total') - before('cloister_tx_admitted_total')).toBe(2);
    expect(after('cloister_rpc_requests_total{method="chain_sendTransaction",outcome="ok"}')).toBe(before('cloister_rpc_requests_total{method="chain_sendTransaction",outcome="ok"}') + 2);
    // At least ours: a block may also carry the node's own system transactions (its attestation).
    expect(after('cloister_block_transactions_sum') - before('cloister_block_transactions_sum')).toBeGreaterThanOrEqual(2);
    expect(after('cloister_ecall_seconds_count{ecall="commitBlock"}')).toBeGreaterThan(before('cloister_ecall_seconds_count{ecall="commitBlock"}'));
    // Nothing is left waiting once both receipts are in.
    expect(after('cloister_mempool_transactions')).toBe(0);
  });

  it('counts a refused transaction by its ChainError code', async () => {
    const client = new CloisterClient(node.rpcUrl);
    const signer = newSigner();
    await execute(client, signer, 'counter', 'increment');
    const before = await scrape();
    // Nonce 0 again: already used by the transaction above.
    await expect(execute(client, signer, 'counter', 'increment', [], { nonce: 0 })).rejects.toThrow();
    const after = await scrape();
    expect(after('cloister_tx_refused_total{code="TX_NONCE_TOO_LOW"}')).toBe(before('cloister_tx_refused_total{code="TX_NONCE_TOO_LOW"}') + 1);
    expect(after('cloister_rpc_requests_total{method="chain_sendTransaction",outcome="error"}')).toBe(before('cloister_rpc_requests_total{method="chain_sendTransaction",outcome="error"}') + 1);
  });
});
