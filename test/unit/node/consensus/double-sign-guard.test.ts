import { describe, expect, it } from 'vitest';
import { DoubleSignGuard } from '../../../../node/consensus/double-sign-guard.js';

const A = 'aa'.repeat(32);
const B = 'bb'.repeat(32);
const sealedAt = { height: 10, round: 1, step: 2, value: A }; // a prevote for A at 10/1

describe('the double-sign guard', () => {
  it('ignores our own signatures: those made since the start, and those from before it (echoed by peers)', () => {
    const guard = new DoubleSignGuard(sealedAt);
    guard.arm(9);
    guard.observe({ height: 10, round: 1, step: 'prevote', value: A }, 'gossip', 9); // our last one before the restart
    guard.observe({ height: 10, round: 0, step: 'precommit', value: 'nil' }, 'gossip', 9); // older still
    guard.signedByUs({ height: 10, round: 2, step: 'prevote', value: 'nil' });
    guard.observe({ height: 10, round: 2, step: 'prevote', value: 'nil' }, 'gossip', 9);
    expect(guard.risk).toBeNull();
  });

  it('trips on a live signature of our key newer than the sealed record that this node did not make', () => {
    const guard = new DoubleSignGuard(sealedAt);
    guard.arm(9);
    guard.observe({ height: 10, round: 1, step: 'precommit', value: A }, 'gossip relayed by p', 9);
    expect(guard.risk?.message).toMatch(/newer than its sealed record .*a precommit at 10\/1|newer than its sealed record/);
    expect(guard.risk?.source).toBe('gossip relayed by p');
  });

  it('trips on another value at the very slot of the sealed record, or at a slot this node signed', () => {
    const a = new DoubleSignGuard(sealedAt);
    a.arm(9);
    a.observe({ height: 10, round: 1, step: 'prevote', value: B }, 'gossip', 9);
    expect(a.risk).not.toBeNull();
    const b = new DoubleSignGuard(sealedAt);
    b.arm(9);
    b.signedByUs({ height: 11, round: 0, step: 'prevote', value: A });
    b.observe({ height: 11, round: 0, step: 'prevote', value: B }, 'gossip', 10);
    expect(b.risk?.message).toMatch(/where this node signed/);
  });

  it('leaves settled heights to the certificates, and judges what it saw before it was armed once it is', () => {
    const guard = new DoubleSignGuard(sealedAt);
    // Before catching up: a precommit of our key at height 40, seen while we were still at 10.
    guard.observe({ height: 40, round: 0, step: 'precommit', value: A }, 'gossip', 10);
    expect(guard.risk).toBeNull();
    guard.arm(40); // caught up: height 40 is committed, its certificate settled it
    expect(guard.risk).toBeNull();
    guard.observe({ height: 41, round: 0, step: 'prevote', value: B }, 'gossip', 40); // live, at the height being decided
    expect(guard.risk?.slot).toMatchObject({ height: 41 });
  });

  it('trips on any signature when the sealed record says the key never signed', () => {
    const guard = new DoubleSignGuard(null);
    guard.arm(0);
    guard.observe({ height: 1, round: 0, step: 'prevote', value: 'nil' }, 'gossip', 0);
    expect(guard.risk?.message).toMatch(/never signed/);
  });
});
