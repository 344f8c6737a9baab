/**
 * The long version of the fault-injection test (`npm run soak -- --minutes N`):
 * random subsets of a 4-node consortium killed with SIGKILL at random moments
 * under load, for N minutes, each round checked for liveness, no loss and no
 * height going back, and every node agreeing at the end. A fresh seed each
 * run (printed, and taken from SOAK_SEED to replay one).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupConsortia, Consortium } from '../helpers/consortium.js';
import { runFaultRounds } from '../helpers/fault-rounds.js';

const minutes = Number(process.env.SOAK_MINUTES ?? '5');
const seed = Number(process.env.SOAK_SEED ?? Date.now() % 1_000_000_007);

afterAll(() => cleanupConsortia({ printLogs: process.env.SOAK_PRINT_LOGS === '1' }));

describe(`soak: random kill -9 rounds for ${minutes} min (seed ${seed})`, () => {
  it('the chain always moves on, loses nothing, never goes back, and the nodes agree', async () => {
    console.log(`soak seed ${seed} (SOAK_SEED=${seed} replays it), ${minutes} min`);
    const c = await Consortium.create({ nodes: 4 });
    await c.startAll();
    await c.waitForHeights(c.all, 2);
    const started = Date.now();
    const report = await runFaultRounds(c, {
      seed,
      untilMs: minutes * 60_000,
      onRound: (round, info) =>
        console.log(`round ${round}: killed ${info.killed.join(',')}; height ${info.height}; ${info.committed} transactions committed; ${Math.round((Date.now() - started) / 1000)} s`),
    });
    console.log(`soak done: ${report.rounds} rounds, ${report.committed} transactions committed, every node agrees`);
    expect(report.rounds).toBeGreaterThan(0);
  }, (minutes + 5) * 60_000);
});
