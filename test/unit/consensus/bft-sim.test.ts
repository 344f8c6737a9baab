import { describe, expect, it } from 'vitest';
import { SEEDS, assertValidChain, sim } from './bft-sim/scenario.js';

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
