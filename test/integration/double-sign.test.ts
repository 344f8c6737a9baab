/**
 * Double signing after a copied data directory: a copy of a stopped node's
 * data directory started next to the original (`cp -a`) holds the same sealed
 * enclave identity. The sealed record cannot tell the two apart; the
 * double-sign guard can: before its first signature a node looks for
 * signatures of its own key it did not make (in the peers' blocks and gossip),
 * and then signs nothing. Equivocation evidence, when there is any, is kept
 * and shown by every node.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupConsortia, Consortium, waitUntil } from '../helpers/consortium.js';

afterEach(async (ctx) => {
  await cleanupConsortia({ printLogs: ctx.task.result?.state === 'fail' });
});

describe('a copied or restored data directory does not make one key sign twice', () => {
  it('a node restored from an old backup moves its record past its key\'s newer signatures and signs again; a second copy beside it never signs', async () => {
    const c = await Consortium.create({ nodes: 4 });
    await c.startAll();
    await c.waitForHeights(c.all, 3);
    const load = c.load({ nodes: [1, 2, 3] }).start();
    const key4 = (await c.netNode(1, 4))!.voteKey;
    /** The highest block from `from` on whose certificate node 4's key signed, or -1. */
    const signedBy4 = async (from: number): Promise<number> => {
      const head = await c.height(1);
      for (let h = head; h >= from; h--) {
        const block = await c.client(1).getBlockByNumber(h, false);
        if (block?.certificate?.signatures.some((s) => s.validator === key4)) return h;
      }
      return -1;
    };
    await c.stop(4);
    const backup = c.backup(4); // cp -a of the stopped node's data directory
    await c.start(4); // the node goes on and signs more blocks…
    const before = await c.height(4);
    await waitUntil(async () => (await signedBy4(before + 1)) > before, 60_000, 'node 4 to sign a block after its restart');
    await c.kill(4);

    // …then the operator restores the old backup. Its sealed record is older than what its key signed since;
    // the certificates it syncs move the record past those signatures, and then it takes part again.
    const restored = await c.startFrom(4, backup);
    const since = await c.height(1);
    await waitUntil(async () => (await signedBy4(since + 1)) > since, 90_000, 'the restored node to sign again');
    expect((await restored.client.nodes())[0]!.doubleSignRisk).toBeUndefined();
    expect(await restored.client.blockNumber()).toBeGreaterThan(since);

    // A second copy (the original data directory) started beside it never signs: it cannot keep the
    // peers the live copy holds, or it sees the live copy's signatures and stops.
    const second = await c.startFrom(4, c.config(4).dataDir);
    const top = await c.maxHeight([1, 2, 3]);
    await c.waitForHeights([1, 2, 3], top + 3, 60_000);
    const status = await second.client.status();
    const self = (await second.client.nodes())[0]!;
    expect(status.consensus?.step === 'starting' || self.doubleSignRisk !== undefined, JSON.stringify({ status, self })).toBe(true);

    const acked = await load.stop();
    await c.assertNoLostTxs(acked, [1, 2, 3]);
    await c.assertSameBlocks([1, 2, 3]);
    // Nobody holds evidence of node 4's key signing two things for one slot.
    for (const i of [1, 2, 3]) {
      for (const node of await c.netNodes(i)) expect(node.equivocations ?? [], `node ${i} holds evidence against ${node.id}`).toEqual([]);
    }
  }, 300_000);
});
