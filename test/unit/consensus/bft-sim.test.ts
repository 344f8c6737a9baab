import { describe, expect, it } from 'vitest';
import { SEEDS, assertValidChain, sim } from './bft-sim/scenario.js';
import { prng } from './bft-sim/sim.js';

describe.each(SEEDS)('BFT simulation: network faults, seed %i', (seed) => {
  it('n=4, all honest: commits many heights', () => {
    const s = sim({ n: 4, seed });
    s.runUntil(2_500);
    s.assertSafe();
    assertValidChain(s);
    expect(s.minHonestHeight()).toBeGreaterThanOrEqual(20);
  });

  it('n=1 commits alone', () => {
    const s = sim({ n: 1, seed });
    s.runUntil(500);
    s.assertSafe();
    expect(s.minHonestHeight()).toBeGreaterThanOrEqual(50);
  });

  it('n=7 (f=2) with two crashed validators keeps committing', () => {
    const s = sim({ n: 7, seed, crashed: [2, 5] });
    s.runUntil(8_000);
    s.assertSafe();
    expect(s.minHonestHeight()).toBeGreaterThanOrEqual(5);
  });

  it('20% message loss: safe, and commits continue thanks to gossip', () => {
    const s = sim({ n: 4, seed, net: { drop: 0.2 } });
    s.runUntil(10_000);
    s.assertSafe();
    assertValidChain(s);
    expect(s.minHonestHeight()).toBeGreaterThanOrEqual(10);
  });

  it('large delays and reordering (delays above the first-round timeouts)', () => {
    const s = sim({ n: 4, seed, net: { minDelayMs: 1, maxDelayMs: 600 } });
    s.runUntil(20_000);
    s.assertSafe();
    expect(s.minHonestHeight()).toBeGreaterThanOrEqual(5);
    // Some heights needed more than one round.
    const rounds = s.nodes[0]!.blocks.map((b) => b.certificate.round);
    expect(Math.max(...rounds)).toBeGreaterThanOrEqual(1);
  });

  it('partition 2|2: nothing commits and nothing forks; commits resume after healing', () => {
    const splitFrom = 2_000;
    const healAt = 6_000;
    const s = sim({
      n: 4,
      seed,
      net: { connected: (a, b, now) => now < splitFrom || now >= healAt || (a < 2) === (b < 2) },
    });
    s.runUntil(splitFrom + 1_000); // in-flight decisions settle
    s.assertSafe();
    const during = s.nodes.map((n) => n.committed.length);
    expect(Math.min(...during)).toBeGreaterThanOrEqual(3);
    s.runUntil(healAt);
    s.assertSafe();
    expect(s.nodes.map((n) => n.committed.length)).toEqual(during); // no commit without 2f+1
    s.runUntil(healAt + 5_000);
    s.assertSafe();
    assertValidChain(s);
    expect(s.minHonestHeight()).toBeGreaterThanOrEqual(Math.max(...during) + 5);
  });
});

describe.each(SEEDS)('BFT simulation: crashes and restarts at any moment, seed %i', (seed) => {
  /**
   * Validators crash (all state but the committed chain, the enclave's sealed safety state and the
   * kept lock record is lost) at random moments, one at a time or all at once, and restart a
   * little later, resuming where their enclave's safety state says. The chain never forks and
   * always moves on.
   */
  function crashAndRestart(s: ReturnType<typeof sim>, random: () => number, crashes: number, everyone: boolean): void {
    let t = 300;
    for (let k = 0; k < crashes; k++) {
      t += 150 + Math.floor(random() * 600);
      const victims = everyone || random() < 0.3 ? s.nodes : s.nodes.filter(() => random() < 0.5);
      const downFor = Math.floor(random() * 400);
      s.runUntil(t);
      for (const node of victims) node.crash();
      s.runUntil(t + downFor);
      for (const node of victims) node.restart();
      t += downFor;
    }
    s.runUntil(t);
  }

  it('random validators crash and restart 25 times: safe, and the chain moves on after each', () => {
    const s = sim({ n: 4, seed });
    const random = prng(seed * 7 + 1);
    crashAndRestart(s, random, 25, false);
    s.assertSafe();
    const after = s.minHonestHeight();
    s.runUntil(s.now + 4_000);
    s.assertSafe();
    assertValidChain(s);
    expect(s.minHonestHeight()).toBeGreaterThanOrEqual(after + 5);
    expect(s.nodes.reduce((n, node) => n + node.restarts, 0)).toBeGreaterThan(25);
  });

  it('two of four crash at any moment (their last messages lost); when one returns, the chain moves on', () => {
    // The two that stay up may be locked and waiting in a round's precommit step (no timeout runs
    // without 2f+1 precommits): the returning validator must take part in that round again, not
    // only in later ones. 15 crash moments per seed.
    const random = prng(seed * 31 + 7);
    for (let trial = 0; trial < 15; trial++) {
      const s = sim({ n: 4, seed: seed * 1000 + trial });
      s.runUntil(200 + Math.floor(random() * 1500));
      s.nodes[2]!.crash();
      s.nodes[3]!.crash();
      const stalled = Math.max(...s.nodes.map((n) => n.committed.length));
      s.runUntil(s.now + 1_000 + Math.floor(random() * 2_000));
      expect(Math.max(...s.nodes.map((n) => n.committed.length))).toBeLessThanOrEqual(stalled + 1);
      s.nodes[2]!.restart();
      s.runUntil(s.now + 5_000);
      s.assertSafe();
      const up = [0, 1, 2].map((i) => s.nodes[i]!.committed.length);
      expect(Math.min(...up), `trial ${trial}: heights ${up} after one returned, ${stalled} at the crash`).toBeGreaterThanOrEqual(stalled + 3);
    }
  }, 60_000);

  it('all four validators crash and restart together 12 times, with message loss: safe and live', () => {
    const s = sim({ n: 4, seed, net: { drop: 0.1 } });
    const random = prng(seed * 13 + 5);
    crashAndRestart(s, random, 12, true);
    s.assertSafe();
    const after = s.minHonestHeight();
    s.runUntil(s.now + 6_000);
    s.assertSafe();
    assertValidChain(s);
    expect(s.minHonestHeight()).toBeGreaterThanOrEqual(after + 5);
  });
});
