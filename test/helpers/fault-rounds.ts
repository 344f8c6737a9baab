import type { Consortium } from './consortium.js';
import { sleep } from './consortium.js';
import { FollowingLoad, prng, waitForHeightAbove } from './fault-injection.js';

export interface FaultRoundsOptions {
  /** Stop after this many rounds… */
  rounds?: number;
  /** …or once this much time has passed (the soak test). */
  untilMs?: number;
  seed: number;
  /** Called after each round (progress for long runs). */
  onRound?(round: number, info: { killed: number[]; height: number; committed: number }): void;
}

/**
 * Rounds of random faults under load: each round kills (SIGKILL) a random
 * non-empty subset of the nodes at a random moment, keeps them down for a
 * random while (the others must go on when 2f+1 remain), restarts them, and
 * checks that the chain commits again within a bound, that no node's height
 * went back, and that every transaction seen committed is still there. At the
 * end every node catches up to the same blocks.
 */
export async function runFaultRounds(c: Consortium, options: FaultRoundsOptions): Promise<{ rounds: number; committed: number }> {
  const random = prng(options.seed);
  const load = new FollowingLoad(c.chainId, () => c.running().map((i) => c.client(i).url)).start();
  const deadline = options.untilMs === undefined ? Infinity : Date.now() + options.untilMs;
  const maxRounds = options.rounds ?? Infinity;
  const seen = new Map<number, number>();
  let round = 0;
  try {
    while (round < maxRounds && Date.now() < deadline) {
      await sleep(100 + random() * 1000);
      const victims = c.all.filter(() => random() < 0.5);
      if (victims.length === 0) victims.push(c.all[Math.floor(random() * c.all.length)]!);
      for (const i of c.all) if (c.isRunning(i)) seen.set(i, Math.max(seen.get(i) ?? 0, await c.height(i).catch(() => 0)));
      await Promise.all(victims.map((i) => c.kill(i)));
      const survivors = c.running();
      // With 2f+1 left, the chain goes on while the others are down.
      if (survivors.length >= 3) {
        const top = Math.max(...survivors.map((i) => seen.get(i) ?? 0));
        await waitForHeightAbove(c.client(survivors[0]!).url, top, 30_000, `round ${round}: the survivors ${survivors.join(', ')}`);
      } else {
        await sleep(random() * 800);
      }
      await Promise.all(victims.map((i) => c.start(i)));
      for (const i of victims) {
        const h = await c.height(i);
        if (h < (seen.get(i) ?? 0)) throw new Error(`round ${round}: node ${i} restarted at height ${h}, below the ${seen.get(i)} it had committed`);
      }
      const top = Math.max(...[...seen.values()]);
      const height = await waitForHeightAbove(c.client(victims[0]!).url, top, 40_000, `round ${round}: restarted node ${victims[0]}`);
      await load.assertCommittedKept(c.client(victims[0]!).url);
      options.onRound?.(round, { killed: victims, height, committed: load.committed.size });
      round++;
    }
  } finally {
    await load.stop();
  }
  const top = await c.maxHeight(c.all);
  await c.waitForHeights(c.all, top, 40_000);
  await c.assertSameBlocks(c.all);
  for (const i of c.all) await load.assertCommittedKept(c.client(i).url);
  return { rounds: round, committed: load.committed.size };
}
