import { describe, expect, it } from 'vitest';
import { encodeTxBatch, FrameReader, encodeFrame, NetworkError, type TxBatchEvent } from '../../../../node/network/index.js';
import type { SignedTx } from '../../../../consensus/index.js';
import { clustersStoppedAfterEach, connectAll, fakeTx, waitFor, type Cluster } from './helpers.js';

const cluster = clustersStoppedAfterEach();

/** A promise and its resolver, to hold a peer's admission open until the test lets it go. */
function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

describe('acknowledged tx push', () => {
  it('reaches every peer once (no relay) and says, per transaction, whether some peer holds it', async () => {
    // b holds the even nonces only, c none of them: what neither holds is reported so.
    const holds = (i: number) => (tx: SignedTx) => (i === 1 ? tx.nonce % 2 === 0 : false);
    const c = await cluster(3, {}, (i) => ({ holdsTx: holds(i) }));
    await connectAll(c.nodes);
    const got: TxBatchEvent[][] = c.nodes.map(() => []);
    c.nodes.forEach((n, i) => n.onTxBatch((e) => void got[i]!.push(e)));
    const txs = Array.from({ length: 6 }, (_, i) => fakeTx(i));
    const held = await c.nodes[0]!.pushTxs(txs);
    expect(held).toEqual([true, false, true, false, true, false]);
    // Both answered before pushTxs resolved (not every tx was held), each once, from the origin itself.
    expect(got.map((l) => l.length)).toEqual([0, 1, 1]);
    for (const i of [1, 2]) {
      expect(got[i]![0]!.txs).toEqual(txs);
      expect(got[i]![0]!.from).toBe(c.ids[0]);
    }
    expect(c.nodes[1]!.stats().tx).toMatchObject({ accepted: 1, rejected: 0 });
  });

  it('answers as soon as one peer holds everything, without waiting for a slow peer', async () => {
    const slow = gate();
    const c = await cluster(3, {}, (i) => (i === 2 ? { txBatchValidator: () => slow.wait.then(() => 'accept' as const) } : {}));
    await connectAll(c.nodes);
    const held = await c.nodes[0]!.pushTxs([fakeTx(1), fakeTx(2)]);
    expect(held).toEqual([true, true]);
    expect(c.nodes[2]!.stats().tx.accepted).toBe(0); // still admitting
    slow.open();
  });

  it('with holders: 2, a transaction counts as held only when two peers hold it', async () => {
    const c = await cluster(3, {}, (i) => ({ holdsTx: (tx: SignedTx) => (i === 1 ? true : tx.nonce === 2) }));
    await connectAll(c.nodes);
    expect(await c.nodes[0]!.pushTxs([fakeTx(1), fakeTx(2)], { holders: 2 })).toEqual([false, true]);
    expect(await c.nodes[0]!.pushTxs([fakeTx(3)], { holders: 1 })).toEqual([true]);
  });

  it('splits what exceeds one batch and acknowledges every transaction in its place', async () => {
    const c = await cluster(2, { maxTxsPerBatch: 4 }, (i) => (i === 1 ? { holdsTx: (tx: SignedTx) => tx.nonce !== 5 } : {}));
    await connectAll(c.nodes);
    const got: TxBatchEvent[] = [];
    c.nodes[1]!.onTxBatch((e) => void got.push(e));
    const held = await c.nodes[0]!.pushTxs(Array.from({ length: 10 }, (_, i) => fakeTx(i)));
    expect(held).toEqual(Array.from({ length: 10 }, (_, i) => i !== 5));
    expect(got.map((e) => e.txs.length)).toEqual([4, 4, 2]);
  });

  it('a peer that has not admitted us holds nothing: its stream is refused and nothing reaches it', async () => {
    // b does not admit a (a admits b): what a pushes is refused, at once rather than at the timeout.
    const c = await cluster(2, { publishWaitMs: 20_000 }, (i) => (i === 1 ? { isAdmitted: () => false } : {}));
    // b never admits a, so wait for a's connection rather than b's subscriptions.
    c.nodes[0]!.addPeer(c.nodes[1]!.addresses()[0]!);
    await waitForConnection(c);
    const got: TxBatchEvent[] = [];
    c.nodes[1]!.onTxBatch((e) => void got.push(e));
    const t0 = Date.now();
    expect(await c.nodes[0]!.pushTxs([fakeTx(1)])).toEqual([false]);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(got).toHaveLength(0);
    expect(c.nodes[1]!.stats().tx).toMatchObject({ accepted: 0, rejected: 0, ignored: 0 });
  });

  it('with no admitted peer it waits publishWaitMs, then reports nothing held', async () => {
    const c = await cluster(2, { publishWaitMs: 300, isAdmitted: () => false });
    const t0 = Date.now();
    expect(await c.nodes[0]!.pushTxs([fakeTx(1), fakeTx(2)])).toEqual([false, false]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it('a peer that never answers holds nothing after publishWaitMs; one that stops releases the wait at once', async () => {
    const never = gate();
    const c = await cluster(2, { publishWaitMs: 400 }, (i) => (i === 1 ? { txBatchValidator: () => never.wait.then(() => 'accept' as const) } : {}));
    await connectAll(c.nodes);
    const t0 = Date.now();
    expect(await c.nodes[0]!.pushTxs([fakeTx(1)])).toEqual([false]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);

    // Now with a long wait: the peer stopping (its stream closed) ends the push long before it.
    const d = await cluster(2, { publishWaitMs: 30_000 }, (i) => (i === 1 ? { txBatchValidator: () => never.wait.then(() => 'accept' as const) } : {}));
    await connectAll(d.nodes);
    let pushed = false;
    const push = d.nodes[0]!.pushTxs([fakeTx(2)]).then((held) => ((pushed = true), held));
    await waitFor(() => d.nodes[0]!.pendingPushes(d.ids[1]!) === 1);
    expect(pushed).toBe(false);
    const t1 = Date.now();
    await d.nodes[1]!.stop();
    expect(await push).toEqual([false]);
    expect(Date.now() - t1).toBeLessThan(10_000);
    never.open();
  });

  it('a peer that stops reading gets its stream closed once 16 MiB wait unsent; what it had not acknowledged is not held', async () => {
    // b admits nothing (its admission never finishes), so it stops reading after 8 admitting and 64
    // queued batches, its flow-control window fills, and a's unsent bytes grow until the bound.
    const never = gate();
    const c = await cluster(2, { publishWaitMs: 120_000 }, (i) => (i === 1 ? { txBatchValidator: () => never.wait.then(() => 'accept' as const) } : {}));
    await connectAll(c.nodes);
    const [a, b] = c.nodes as [Cluster['nodes'][0], Cluster['nodes'][0]];
    const big = (nonce: number): SignedTx => ({ ...fakeTx(nonce), args: ['x'.repeat(60_000)] });
    const batch = encodeTxBatch('test-chain', Array.from({ length: 15 }, (_, i) => big(i)));
    expect(batch.length).toBeGreaterThan(900_000);
    const pushes: Promise<boolean[]>[] = [];
    let settled = 0;
    // Far more than b buffers (72 batches) plus a full window and the 16 MiB bound; fewer than the 256
    // batches a peer may leave unacknowledged.
    for (let i = 0; i < 200; i++) pushes.push(a.pushRaw(b.peerId, batch, 15).finally(() => void settled++));
    await waitFor(() => settled === pushes.length, 60_000, 'every push to settle');
    // Settled by the stream's closing, not by the 120 s acknowledgement timeout.
    const held = await Promise.all(pushes);
    expect(held.every((h) => h.every((x) => x === false))).toBe(true);
    expect(a.pendingPushes(b.peerId)).toBe(0);
    never.open();
  }, 90_000);

  it('a junk batch is the sender\'s fault: counted as a reject, its stream closed, honest pushes go on', async () => {
    const c = await cluster(2);
    await connectAll(c.nodes);
    const [a, b] = c.nodes as [Cluster['nodes'][0], Cluster['nodes'][0]];
    expect(await a.pushRaw(b.peerId, new TextEncoder().encode('not json'), 1)).toEqual([false]);
    expect(await a.pushRaw(b.peerId, encodeTxBatch('other-chain', [fakeTx(1)]), 1)).toEqual([false]);
    expect(b.stats().tx).toMatchObject({ accepted: 0, rejected: 2, reasons: { not_json: 1, wrong_chain: 1 } });
    // A new stream for the honest push.
    expect(await a.pushTxs([fakeTx(3)])).toEqual([true]);
    expect(b.stats().tx.accepted).toBe(1);
  });
});

describe('FrameReader', () => {
  it('splits frames across and within chunks and refuses an oversized header before its body', () => {
    const r = new FrameReader(10);
    const f1 = encodeFrame(new Uint8Array([1, 2, 3]));
    const f2 = encodeFrame(new Uint8Array([]));
    const f3 = encodeFrame(new Uint8Array([9, 8, 7, 6, 5]));
    const all = new Uint8Array([...f1, ...f2, ...f3]);
    // Byte by byte, then all at once: the same frames.
    const one: number[][] = [];
    for (const b of all) for (const f of r.push(new Uint8Array([b]))) one.push([...f]);
    expect(one).toEqual([[1, 2, 3], [], [9, 8, 7, 6, 5]]);
    expect(new FrameReader(10).push(all).map((f) => [...f])).toEqual([[1, 2, 3], [], [9, 8, 7, 6, 5]]);
    // Split across a header.
    const r2 = new FrameReader(10);
    expect(r2.push(all.subarray(0, 9))).toHaveLength(1);
    expect(r2.push(all.subarray(9)).map((f) => [...f])).toEqual([[], [9, 8, 7, 6, 5]]);
    const big = new Uint8Array(4);
    new DataView(big.buffer).setUint32(0, 11, false);
    expect(() => new FrameReader(10).push(big)).toThrow(NetworkError);
    try {
      new FrameReader(10).push(big);
    } catch (err) {
      expect((err as NetworkError).code).toBe('FRAME_TOO_LARGE');
    }
  });
});

async function waitForConnection(c: Cluster): Promise<void> {
  await waitFor(() => c.nodes[0]!.connectionCount(c.ids[1]!) > 0 && c.nodes[1]!.connectionCount(c.ids[0]!) > 0, 10_000, 'a connection');
}
