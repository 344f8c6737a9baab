import { describe, expect, it } from 'vitest';
import { SEEDS, assertValidChain, sim } from './bft-sim/scenario.js';

describe.each(SEEDS)('BFT simulation: crashed and Byzantine validators, seed %i', (seed) => {
  it('a crashed proposer: rounds change and the others commit', () => {
    const s = sim({ n: 4, seed, crashed: [0] });
    s.runUntil(8_000);
    s.assertSafe();
    expect(s.minHonestHeight()).toBeGreaterThanOrEqual(6);
    const node = s.nodes[1]!;
    const crashedId = s.validators[0];
    expect(node.blocks.some((b) => b.certificate.round >= 1)).toBe(true);
    expect(node.blocks.every((b) => b.block.header.proposer !== crashedId)).toBe(true);
  });

  it('an equivocating proposer (different blocks to different peers): safe and live, evidence recorded', () => {
    const s = sim({ n: 4, seed, byzantine: { 1: 'equivocatingProposer' } });
    s.runUntil(8_000);
    s.assertSafe();
    assertValidChain(s);
    expect(s.minHonestHeight()).toBeGreaterThanOrEqual(6);
    const evidence = s.honestNodes().flatMap((n) => n.evidence);
    expect(evidence.some((e) => e.kind === 'proposal' && e.validator === s.validators[1])).toBe(true);
  });

  it('a proposer with a wrong state root: its blocks never commit, the next proposer’s do', () => {
    const s = sim({ n: 4, seed, byzantine: { 2: 'wrongStateRoot' } });
    s.runUntil(8_000);
    s.assertSafe();
    assertValidChain(s);
    expect(s.minHonestHeight()).toBeGreaterThanOrEqual(6);
    const bad = s.validators[2];
    const blocks = s.honestNodes()[0]!.blocks;
    expect(blocks.every((b) => b.block.header.proposer !== bad)).toBe(true);
    // Heights where the bad node proposed round 0 ((h + 0) % 4 === 2) were decided in a later round.
    for (const b of blocks) if (b.block.header.height % 4 === 2) expect(b.certificate.round).toBeGreaterThanOrEqual(1);
  });

  it('a Byzantine validator double-voting: detected as equivocation, safety holds', () => {
    const s = sim({ n: 4, seed, byzantine: { 3: 'doubleVote' }, net: { drop: 0.05 } });
    s.runUntil(8_000);
    s.assertSafe();
    assertValidChain(s);
    expect(s.minHonestHeight()).toBeGreaterThanOrEqual(5);
    const evidence = s.honestNodes().flatMap((n) => n.evidence);
    expect(evidence.some((e) => e.kind === 'vote' && e.validator === s.validators[3])).toBe(true);
    expect(evidence.every((e) => e.validator === s.validators[3])).toBe(true);
  });

  it('loss, delay and a crashed node together', () => {
    const s = sim({ n: 4, seed, crashed: [3], net: { drop: 0.1, minDelayMs: 1, maxDelayMs: 200 } });
    s.runUntil(15_000);
    s.assertSafe();
    expect(s.minHonestHeight()).toBeGreaterThanOrEqual(5);
  });
});
