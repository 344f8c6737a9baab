/**
 * The bounded fault-injection test: random subsets of a 4-node consortium
 * killed with SIGKILL at random moments under load; after each round the
 * chain moves on, nothing committed is lost, no height goes back; at the end
 * every node agrees. `npm run soak -- --minutes N` runs the same rounds for
 * longer with fresh seeds.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupConsortia, Consortium } from '../helpers/consortium.js';
import { cleanupNodes } from '../helpers/dev-node.js';
import { runFaultRounds } from '../helpers/fault-rounds.js';

afterEach(async (ctx) => {
  await cleanupNodes();
  await cleanupConsortia({ printLogs: ctx.task.result?.state === 'fail' });
});

describe('a restart never wedges consensus', () => {
  it('random subsets of a consortium killed -9 at random moments (4 rounds): liveness, no loss, agreement', async () => {
    const c = await Consortium.create({ nodes: 4 });
    await c.startAll();
    await c.waitForHeights(c.all, 2);
    const report = await runFaultRounds(c, { rounds: 4, seed: 8_2026 });
    expect(report.rounds).toBe(4);
    expect(report.committed).toBeGreaterThan(10);
  }, 300_000);
});
