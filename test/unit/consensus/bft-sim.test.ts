import { describe, expect, it } from 'vitest';
import { Simulator, type SimOptions } from './bft-sim/sim.js';

const SEEDS = [1, 2, 3];

function run(opts: SimOptions, untilMs: number): Simulator {
  const sim = new Simulator(opts);
  sim.start();
  sim.runUntil(untilMs);
  sim.assertSafe();
  return sim;
}

describe('BFT simulation', () => {
  for (const seed of SEEDS) {
    describe(`seed ${seed}`, () => {
      it('n=4, all honest: commits many heights', () => {
        const sim = run({ n: 4, seed }, 10_000);
        expect(sim.minHonestHeight()).toBeGreaterThanOrEqual(20);
      });

      it('n=1 commits alone', () => {
        const sim = run({ n: 1, seed }, 2_000);
        expect(sim.minHonestHeight()).toBeGreaterThanOrEqual(50);
      });
    });
  }
});
