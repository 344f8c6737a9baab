/**
 * A restart never wedges consensus: nodes killed with SIGKILL at random moments
 * under load (one node of a single-node chain, all four nodes of a consortium
 * at once, random subsets) always come back and commit again, never lose a
 * committed transaction, never go back in height, and agree on every block.
 * The seeds are fixed so that a failure can be replayed; the soak test
 * (`npm run soak`) runs the random-subset rounds for longer with fresh seeds.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CloisterClient } from '../../node/client/index.js';
import { readFileSync } from 'node:fs';
import { cleanupConsortia, Consortium, sleep, waitUntil } from '../helpers/consortium.js';
import { cleanupNodes, startNode, tempDir, type TestNode } from '../helpers/dev-node.js';
import { FollowingLoad, prng, waitForHeightAbove } from '../helpers/fault-injection.js';
import { runFaultRounds } from '../helpers/fault-rounds.js';

afterEach(async (ctx) => {
  await cleanupNodes();
  await cleanupConsortia({ printLogs: ctx.task.result?.state === 'fail' });
});

describe('a restart never wedges consensus', () => {
  it('a loaded single node killed -9 at 20 random moments always commits again, keeps what it committed and never goes back', async () => {
    const random = prng(20261206);
    const dataDir = tempDir();
    let node: TestNode = await startNode(dataDir);
    const chainId = (await new CloisterClient(node.rpcUrl).status()).chainId;
    let alive = true;
    const load = new FollowingLoad(chainId, () => (alive ? [node.rpcUrl] : [])).start();
    let height = 0;
    try {
      for (let round = 0; round < 20; round++) {
        // Mostly in the middle of work; sometimes right after the start, while it resumes.
        await sleep(random() < 0.25 ? random() * 60 : 150 + random() * 900);
        height = Math.max(height, await new CloisterClient(node.rpcUrl, { timeoutMs: 3000 }).blockNumber().catch(() => height));
        alive = false;
        await node.kill('SIGKILL');
        node = await startNode(dataDir);
        alive = true;
        const client = new CloisterClient(node.rpcUrl);
        const resumedAt = await client.blockNumber();
        expect(resumedAt, `round ${round}: the height went back`).toBeGreaterThanOrEqual(height);
        height = await waitForHeightAbove(node.rpcUrl, resumedAt, 15_000, `round ${round}: the restarted node`).catch((err: Error) => {
          throw new Error(`${err.message}\n---- node stderr:\n${node.stderrTail()}`);
        });
        await load.assertCommittedKept(node.rpcUrl);
      }
    } finally {
      await load.stop();
    }
    expect(load.committed.size).toBeGreaterThan(20);
  }, 240_000);

  it('all four nodes of a consortium killed -9 together 10 times under load: the chain moves on each time, loses nothing, and the nodes agree', async () => {
    const c = await Consortium.create({ nodes: 4 });
    await c.startAll();
    await c.waitForHeights(c.all, 2);
    const random = prng(4_2026);
    const load = new FollowingLoad(c.chainId, () => c.running().map((i) => c.client(i).url)).start();
    const heights = new Map<number, number>();
    try {
      for (let round = 0; round < 10; round++) {
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

  it('random subsets of a consortium killed -9 at random moments (5 rounds): liveness, no loss, agreement', async () => {
    const c = await Consortium.create({ nodes: 4 });
    await c.startAll();
    await c.waitForHeights(c.all, 2);
    const report = await runFaultRounds(c, { rounds: 5, seed: 8_2026 });
    expect(report.rounds).toBe(5);
    expect(report.committed).toBeGreaterThan(10);
  }, 300_000);
});
