/**
 * A restart never wedges consensus: all four nodes of a consortium killed
 * with SIGKILL together under load come back, commit again within seconds,
 * lose no committed transaction, never go back in height, and agree on every
 * block. The seed is fixed so that a failure can be replayed.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupConsortia, Consortium, sleep, waitUntil } from '../helpers/consortium.js';
import { cleanupNodes } from '../helpers/dev-node.js';
import { FollowingLoad, prng, waitForHeightAbove } from '../helpers/fault-injection.js';

afterEach(async (ctx) => {
  await cleanupNodes();
  await cleanupConsortia({ printLogs: ctx.task.result?.state === 'fail' });
});

describe('a restart never wedges consensus', () => {
  it('all four nodes of a consortium killed -9 together 6 times under load: the chain moves on each time, loses nothing, and the nodes agree', async () => {
    const c = await Consortium.create({ nodes: 4 });
    await c.startAll();
    await c.waitForHeights(c.all, 2);
    const random = prng(4_2026);
    const load = new FollowingLoad(c.chainId, () => c.running().map((i) => c.client(i).url)).start();
    const heights = new Map<number, number>();
    try {
      for (let round = 0; round < 6; round++) {
        await sleep(200 + random() * 800);
        for (const i of c.all) heights.set(i, Math.max(heights.get(i) ?? 0, await c.height(i).catch(() => 0)));
        await Promise.all(c.all.map((i) => c.kill(i)));
        if (round === 0) {
          // A node alone says what it waits for.
          await c.start(1);
          await waitUntil(() => readFileSync(c.node(1).logFile, 'utf8').includes('waiting for quorum: 1 of 4 validators connected'), 20_000, 'node 1 to say it waits for a quorum');
          await c.startAll([2, 3, 4]);
        } else {
          await c.startAll();
        }
        for (const i of c.all) expect(await c.height(i), `round ${round}: node ${i} went back`).toBeGreaterThanOrEqual(heights.get(i)!);
        const top = Math.max(...heights.values());
        await waitForHeightAbove(c.client(1).url, top, 40_000, `round ${round}: node 1`);
        await load.assertCommittedKept(c.client(1).url);
      }
    } finally {
      await load.stop();
    }
    const top = await c.maxHeight(c.all);
    await c.waitForHeights(c.all, top, 30_000);
    await c.assertSameBlocks(c.all);
    for (const i of c.all) await load.assertCommittedKept(c.client(i).url);
    expect(load.committed.size).toBeGreaterThan(10);
  }, 300_000);

});
