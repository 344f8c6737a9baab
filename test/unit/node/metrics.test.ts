import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeMetrics } from '../../../node/metrics/metrics.js';
import { post, rpc, startServer, type Harness } from './rpc/fixtures.js';

/** The value of one sample line of the text exposition (`name{labels} value`), or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('NodeMetrics', () => {
  it('reads the gauges from their sources on every scrape', async () => {
    const state = { height: 3, round: 0, mempool: 7, connected: 2, admitted: 1 };
    const metrics = new NodeMetrics({
      processMetrics: false,
      sources: {
        height: () => state.height,
        round: () => state.round,
        mempool: () => state.mempool,
        peers: () => ({ connected: state.connected, admitted: state.admitted }),
      },
    });
    let text = await metrics.text();
    expect(sample(text, 'cloister_chain_height')).toBe(3);
    expect(sample(text, 'cloister_mempool_transactions')).toBe(7);
    expect(sample(text, 'cloister_peers_connected')).toBe(2);
    expect(sample(text, 'cloister_peers_admitted')).toBe(1);
    Object.assign(state, { height: 4, round: 2, mempool: 0, connected: 3, admitted: 3 });
    text = await metrics.text();
    expect(sample(text, 'cloister_chain_height')).toBe(4);
    expect(sample(text, 'cloister_consensus_round')).toBe(2);
    expect(sample(text, 'cloister_mempool_transactions')).toBe(0);
    expect(sample(text, 'cloister_peers_admitted')).toBe(3);
  });

  it('moves with committed blocks, admissions, refusals, gossip and ecalls', async () => {
    const metrics = new NodeMetrics({ processMetrics: false });
    metrics.blockCommitted(2, null); // the first block after start: no interval yet
    metrics.blockCommitted(0, 0.8);
    metrics.blockCommitted(5, 1.5);
    metrics.txAdmitted();
    metrics.txAdmitted();
    metrics.txRefused('TX_NONCE_TOO_LOW');
    metrics.gossip('tx', 'reject');
    metrics.gossip('tx', 'reject');
    metrics.gossip('consensus', 'accept');
    metrics.ecall('executeBlock', 0.02);
    const text = await metrics.text();
    expect(sample(text, 'cloister_block_transactions_count')).toBe(3);
    expect(sample(text, 'cloister_block_transactions_sum')).toBe(7);
    expect(sample(text, 'cloister_block_commit_seconds_count')).toBe(2);
    expect(sample(text, 'cloister_block_commit_seconds_sum')).toBeCloseTo(2.3);
    expect(sample(text, 'cloister_block_commit_seconds_bucket{le="1"}')).toBe(1);
    expect(sample(text, 'cloister_tx_admitted_total')).toBe(2);
    expect(sample(text, 'cloister_tx_refused_total{code="TX_NONCE_TOO_LOW"}')).toBe(1);
    expect(sample(text, 'cloister_gossip_messages_total{topic="tx",verdict="reject"}')).toBe(2);
    expect(sample(text, 'cloister_gossip_messages_total{topic="consensus",verdict="accept"}')).toBe(1);
    expect(sample(text, 'cloister_ecall_seconds_count{ecall="executeBlock"}')).toBe(1);
  });

  it('keeps each node apart: a registry per instance, not the global one', async () => {
    const a = new NodeMetrics({ processMetrics: false });
    const b = new NodeMetrics({ processMetrics: false });
    a.txAdmitted();
    expect(sample(await a.text(), 'cloister_tx_admitted_total')).toBe(1);
    expect(sample(await b.text(), 'cloister_tx_admitted_total')).toBe(0);
  });
});

describe('GET /metrics on the RPC port', () => {
  let t: Harness;
  let bare: Harness;
  beforeAll(async () => {
    t = await startServer({ metricsEndpoint: new NodeMetrics({ processMetrics: false }) });
    bare = await startServer();
  });
  afterAll(async () => {
    await Promise.all([t.server.stop(), bare.server.stop()]);
  });

  it('serves the Prometheus text format, counting requests by served method name and outcome', async () => {
    expect((await rpc(t.url, { jsonrpc: '2.0', id: 1, method: 'chain_blockNumber' })).status).toBe(200);
    await rpc(t.url, { jsonrpc: '2.0', id: 2, method: 'chain_getBlockByNumber', params: ['not a height'] });
    // A client's made-up names never become label values.
    await rpc(t.url, { jsonrpc: '2.0', id: 3, method: 'made_up_<script>' });
    await rpc(t.url, [{ jsonrpc: '2.0', id: 4, method: 'chain_blockNumber' }, { jsonrpc: '2.0', id: 5, method: 'also made up' }]);
    await post(t.url, '{not json');
    const res = await fetch(`${t.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const text = await res.text();
    expect(sample(text, 'cloister_rpc_requests_total{method="chain_blockNumber",outcome="ok"}')).toBe(2);
    expect(sample(text, 'cloister_rpc_requests_total{method="chain_getBlockByNumber",outcome="error"}')).toBe(1);
    expect(sample(text, 'cloister_rpc_requests_total{method="unknown",outcome="error"}')).toBe(3);
    expect(text).not.toContain('made_up');
    expect(text).not.toContain('also made up');
  });

  it('keeps the routing: HEAD is served, other methods 405, other paths 404, no metrics 404', async () => {
    expect((await fetch(`${t.url}/metrics`, { method: 'HEAD' })).status).toBe(200);
    const put = await fetch(`${t.url}/metrics`, { method: 'POST', body: '{}' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD');
    expect((await fetch(`${t.url}/metrics/x`)).status).toBe(404);
    expect((await fetch(`${bare.url}/metrics`)).status).toBe(404);
    expect((await rpc(t.url, { jsonrpc: '2.0', id: 1, method: 'chain_blockNumber' })).status).toBe(200);
  });
});
