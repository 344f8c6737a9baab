import { describe, expect, it } from 'vitest';
import { canonicalBytes } from '../../../../consensus/index.js';
import { encodeTxBatch, type TxBatchEvent, type ConsensusEvent } from '../../../../node/network/index.js';
import { NodeMetrics } from '../../../../node/metrics/metrics.js';
import { CHAIN, clustersStoppedAfterEach, connectAll, fakeTx, waitFor } from './helpers.js';

const cluster = clustersStoppedAfterEach();

describe('gossip mesh', () => {
  it('4 nodes form a mesh from configured peers; tx batches and consensus messages arrive exactly once', async () => {
    const c = await cluster(4);
    await connectAll(c.nodes);
    // lower peer id dials: one connection per pair
    for (const a of c.nodes) for (const b of c.nodes) if (a !== b) expect(a.connectionCount(b.peerId)).toBe(1);

    const txs: TxBatchEvent[][] = c.nodes.map(() => []);
    const cons: ConsensusEvent[][] = c.nodes.map(() => []);
    c.nodes.forEach((n, i) => {
      n.onTxBatch((e) => void txs[i]!.push(e));
      n.onConsensus((e) => void cons[i]!.push(e));
    });
    const batch = Array.from({ length: 50 }, (_, i) => fakeTx(i));
    expect(await c.nodes[0]!.publishTxBatch(batch)).toBe(1);
    const consensusMsg = canonicalBytes({ type: 'vote', chainId: CHAIN, height: 1 });
    await c.nodes[2]!.publishConsensus(consensusMsg);
    await waitFor(() => [1, 2, 3].every((i) => txs[i]!.length >= 1) && [0, 1, 3].every((i) => cons[i]!.length >= 1));
    // let any duplicate arrive before counting
    await new Promise((r) => setTimeout(r, 200));
    expect(txs.map((l) => l.length)).toEqual([0, 1, 1, 1]);
    expect(cons.map((l) => l.length)).toEqual([1, 1, 0, 1]);
    for (const i of [1, 2, 3]) expect(txs[i]![0]!.txs).toEqual(batch);
    for (const i of [0, 1, 3]) expect(Buffer.from(cons[i]![0]!.data)).toEqual(Buffer.from(consensusMsg));
  });

  it('with relayTxs false a tx batch crosses each link once: delivered to every peer, relayed by none (consensus still relays)', async () => {
    // A line a — b — c: what c gets from a, b relayed.
    const line = await cluster(3, { relayTxs: false });
    const [a, b, c] = line.nodes as [typeof line.nodes[0], typeof line.nodes[0], typeof line.nodes[0]];
    a.addPeer(b.addresses()[0]!);
    b.addPeer(c.addresses()[0]!);
    await waitFor(() => b.subscribers('tx').length === 2 && a.subscribers('consensus').length === 1 && c.subscribers('consensus').length === 1);
    const got: Record<string, TxBatchEvent[]> = { b: [], c: [] };
    b.onTxBatch((e) => void got.b!.push(e));
    c.onTxBatch((e) => void got.c!.push(e));
    const cons: ConsensusEvent[] = [];
    c.onConsensus((e) => void cons.push(e));
    await a.publishTxBatch([fakeTx(1)]);
    await a.publishConsensus(canonicalBytes({ type: 'vote', chainId: CHAIN, height: 2 }));
    // The consensus message is relayed by b: once c has it, b has long had the batch and would have relayed it too.
    await waitFor(() => cons.length === 1 && got.b!.length === 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(got.b!.map((e) => e.txs)).toEqual([[fakeTx(1)]]);
    expect(got.c).toEqual([]);
    // Counted as accepted (it was), though gossipsub was told not to pass it on.
    expect(b.stats().tx).toMatchObject({ accepted: 1, rejected: 0 });

    // A full mesh of four: each batch arrives once at each of the others, and nothing arrives twice.
    const mesh = await cluster(4, { relayTxs: false });
    await connectAll(mesh.nodes);
    const seen = mesh.nodes.map(() => 0);
    mesh.nodes.forEach((n, i) => n.onTxBatch((e) => void (seen[i]! += e.txs.length)));
    await mesh.nodes[0]!.publishTxBatch([fakeTx(2)]);
    await mesh.nodes[3]!.publishTxBatch([fakeTx(3)]);
    await waitFor(() => seen.every((x, i) => x === (i === 0 || i === 3 ? 1 : 2)));
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toEqual([1, 2, 2, 1]);
  });

  it('splits large tx sets into size-capped messages and measures throughput', async () => {
    const c = await cluster(3, { maxTxBatchBytes: 16 * 1024 });
    await connectAll(c.nodes);
    let received = 0;
    c.nodes[1]!.onTxBatch((e) => void (received += e.txs.length));
    const total = 20_000;
    const txs = Array.from({ length: total }, (_, i) => fakeTx(i));
    const t0 = performance.now();
    const messages = await c.nodes[0]!.publishTxBatch(txs);
    await waitFor(() => received === total, 15_000, 'all txs');
    const secs = (performance.now() - t0) / 1000;
    expect(messages).toBeGreaterThan(1);
    console.log(`gossip: ${total} txs in ${messages} messages in ${secs.toFixed(2)} s = ${Math.round(total / secs)} tx/s, ${Math.round(messages / secs)} msg/s (3 nodes, one process)`);
  });

  it('publish waits for a subscriber instead of failing right after the dial', async () => {
    const c = await cluster(2);
    let got = 0;
    c.nodes[1]!.onTxBatch(() => void got++);
    c.nodes[0]!.addPeer(c.nodes[1]!.addresses()[0]!);
    c.nodes[1]!.addPeer(c.nodes[0]!.addresses()[0]!);
    await c.nodes[0]!.publishTxBatch([fakeTx(1)]); // no awaited mesh: the queue waits
    await waitFor(() => got === 1);
  });

  it('fails with NO_PEERS after the bounded wait and caps the backlog', async () => {
    const c = await cluster(1, { publishWaitMs: 100, maxQueuedMessages: 2 });
    const n = c.nodes[0]!;
    const a = n.publishConsensus(canonicalBytes({ type: 'x' }));
    const b = n.publishConsensus(canonicalBytes({ type: 'y' }));
    await expect(n.publishConsensus(canonicalBytes({ type: 'z' }))).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    await expect(a).rejects.toMatchObject({ code: 'NO_PEERS' });
    await expect(b).rejects.toMatchObject({ code: 'NO_PEERS' });
  });

  it('redials a configured peer after it restarts', async () => {
    const c = await cluster(2, { redialBaseMs: 20, dialGraceMs: 50 });
    await connectAll(c.nodes);
    const [a, b] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
    // whichever node dials, disconnect by stopping the other and starting a new one on the same key+port
    const addrB = b.addresses()[0]!;
    await b.stop();
    await waitFor(() => a.peers().length === 0);
    const { NetworkService } = await import('../../../../node/network/index.js');
    const { silentLogger } = await import('../../../../node/log/logger.js');
    const port = addrB.split('/')[4]!;
    const b2 = new NetworkService({
      chainId: CHAIN,
      privateKey: c.keys[1]!,
      listen: [`/ip4/127.0.0.1/tcp/${port}`],
      peers: [a.addresses()[0]!],
      allowedPeerIds: c.ids,
      log: silentLogger,
      redialBaseMs: 20,
      dialGraceMs: 50,
    });
    c.nodes.push(b2);
    await b2.start();
    await waitFor(() => a.peers().some((p) => p.id === b2.peerId) && a.subscribers('tx').length === 1, 5000, 'reconnect');
  });
});

describe('gating', () => {
  it('a peer not in the allow list cannot connect either way and its messages never arrive', async () => {
    const c = await cluster(3, { publishWaitMs: 500 }, (i) => (i === 2 ? {} : { allowedPeerIds: [] }));
    // nodes 0,1 allow only each other; node 2 (the outsider) allows everyone
    const ids = c.ids;
    const [a, b, x] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0], typeof c.nodes[0]];
    (a as unknown as { allowed: Set<string> }).allowed.add(ids[1]!);
    (b as unknown as { allowed: Set<string> }).allowed.add(ids[0]!);
    await connectAll([a, b]);
    const got: TxBatchEvent[] = [];
    a.onTxBatch((e) => void got.push(e));
    b.onTxBatch((e) => void got.push(e));
    const aSaw: string[] = [];
    a.on('peer:connect', (p: { id: string }) => aSaw.push(p.id));
    // outbound: a's gater refuses to dial x before any connection exists
    await expect(a.connect(x.addresses()[0]!)).rejects.toThrow();
    // inbound: a drops x right after the Noise handshake (x's dial may briefly succeed on its side)
    await x.connect(a.addresses()[0]!).catch(() => undefined);
    await waitFor(() => x.peers().length === 0, 5000, 'x dropped');
    expect(aSaw).toEqual([]);
    x.addPeer(a.addresses()[0]!);
    x.addPeer(b.addresses()[0]!);
    await expect(x.publishTxBatch([fakeTx(7)])).rejects.toBeTruthy();
    expect(a.peers().map((p) => p.id)).toEqual([ids[1]]);
    expect(b.peers().map((p) => p.id)).toEqual([ids[0]]);
    expect(got).toEqual([]);
  }, 15_000);
});

describe('validation', () => {
  it('rejects malformed and oversized batches, drops the sender score to graylist, honest traffic flows', async () => {
    // topology: bad(0) — a(1) — b(2); b never connects to bad, so anything b sees from bad was relayed by a
    const c = await cluster(3, { maxTxBatchBytes: 8 * 1024 });
    const [bad, a, b] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0], typeof c.nodes[0]];
    bad.addPeer(a.addresses()[0]!);
    a.addPeer(bad.addresses()[0]!);
    a.addPeer(b.addresses()[0]!);
    b.addPeer(a.addresses()[0]!);
    await waitFor(() => a.subscribers('tx').length === 2 && bad.subscribers('tx').length === 1 && b.subscribers('tx').length === 1);
    let aGot = 0;
    let bGot = 0;
    a.onTxBatch(() => void aGot++);
    b.onTxBatch(() => void bGot++);
    const junk = [
      new TextEncoder().encode('not json'),
      new Uint8Array([0xff, 0xfe, 0x00]),
      canonicalBytes({ chainId: CHAIN, txs: [{ nonsense: true }] }),
      canonicalBytes({ chainId: CHAIN, txs: [fakeTx(1), fakeTx(1)] }),
      encodeTxBatch(CHAIN, Array.from({ length: 200 }, (_, i) => fakeTx(i))), // > 8 KiB
    ];
    for (const j of junk) await bad.publishRaw('tx', j);
    await waitFor(() => a.stats().tx.rejected === junk.length, 5000, 'rejections');
    expect(a.stats().tx.reasons).toMatchObject({ not_json: 2, malformed_tx: 1, duplicate_tx: 1, too_large: 1 });
    await waitFor(() => a.peerScore(bad.peerId) < -80, 5000, 'graylist score');
    // wrong chain is ignored, not rejected
    // honest traffic keeps flowing a → b and b → a
    await a.publishTxBatch([fakeTx(100)]);
    await b.publishTxBatch([fakeTx(101)]);
    await waitFor(() => bGot === 1 && aGot === 1);
    expect(b.stats().tx.rejected).toBe(0);
    expect(b.stats().tx.accepted).toBe(1);
    expect(a.peerScore(b.peerId)).toBeGreaterThanOrEqual(0);
  });

  it('ignores (does not reject) a batch for another chain and accepts a consensus validator verdict', async () => {
    const metrics = new NodeMetrics({ processMetrics: false });
    const c = await cluster(2, {}, (i) => (i === 1 ? { metrics } : {}));
    await connectAll(c.nodes);
    const [s, r] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
    r.setConsensusValidator((data) => (data[0] === 0x01 ? 'accept' : { verdict: 'reject', reason: 'bad_vote' }));
    const got: ConsensusEvent[] = [];
    r.onConsensus((e) => void got.push(e));
    r.onTxBatch(() => {
      throw new Error('handler bug must not crash anything');
    });
    await s.publishRaw('tx', canonicalBytes({ chainId: 'other', txs: [fakeTx(1)] }));
    await s.publishConsensus(new Uint8Array([0x02, 1]));
    await s.publishConsensus(new Uint8Array([0x01, 2]));
    await s.publishTxBatch([fakeTx(3)]);
    await waitFor(() => got.length === 1 && r.stats().tx.accepted === 1);
    expect(r.stats().tx).toMatchObject({ ignored: 1, rejected: 0, reasons: { wrong_chain: 1 } });
    expect(r.stats().consensus).toMatchObject({ accepted: 1, rejected: 1, reasons: { bad_vote: 1 } });
    // The same verdicts in the metrics, by topic kind (never the topic string, which carries the chain id).
    const text = await metrics.text();
    expect(text).toContain('cloister_gossip_messages_total{topic="tx",verdict="ignore"} 1');
    expect(text).toContain('cloister_gossip_messages_total{topic="tx",verdict="accept"} 1');
    expect(text).toContain('cloister_gossip_messages_total{topic="consensus",verdict="reject"} 1');
    expect(text).toContain('cloister_gossip_messages_total{topic="consensus",verdict="accept"} 1');
  });
});
