/**
 * A restart never wedges consensus: a loaded single-node chain killed with
 * SIGKILL at random moments always comes back and commits again, never loses
 * a committed transaction and never goes back in height. (The four-node
 * versions are in crash-restart.test.ts and fault-injection.test.ts.) The
 * seed is fixed so that a failure can be replayed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CloisterClient } from '../../node/client/index.js';
import { cleanupConsortia, sleep } from '../helpers/consortium.js';
import { cleanupNodes, startNode, tempDir, type TestNode } from '../helpers/dev-node.js';
import { FollowingLoad, prng, waitForHeightAbove } from '../helpers/fault-injection.js';

afterEach(async (ctx) => {
  await cleanupNodes();
  await cleanupConsortia({ printLogs: ctx.task.result?.state === 'fail' });
});

describe('a restart never wedges consensus', () => {
  it('a loaded single node killed -9 at 12 random moments always commits again, keeps what it committed and never goes back', async () => {
    const random = prng(20261206);
    const dataDir = tempDir();
    let node: TestNode = await startNode(dataDir);
    const chainId = (await new CloisterClient(node.rpcUrl).status()).chainId;
    let alive = true;
    const load = new FollowingLoad(chainId, () => (alive ? [node.rpcUrl] : [])).start();
    let height = 0;
    try {
      for (let round = 0; round < 12; round++) {
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
    expect(load.committed.size).toBeGreaterThan(12);
  }, 240_000);

});
