import { describe, expect, it } from 'vitest';
import { AdmittedTxs } from '../../../contracts/enclave/admitted-txs.js';
import type { SignedTx } from '../../../consensus/index.js';

const tx = (nonce: number): SignedTx => ({
  chainId: 'c',
  from: 'ab'.repeat(32),
  nonce,
  contract: 'counter',
  method: 'increment',
  args: [],
  gasLimit: 1,
  signature: 'cd'.repeat(64),
});
const hash = (i: number): string => i.toString(16).padStart(64, '0');

describe('the transactions an enclave admitted', () => {
  it('forgets the oldest past its count, and what was committed', () => {
    const held = new AdmittedTxs(3, 1_000_000);
    for (let i = 0; i < 5; i++) held.add(hash(i), tx(i), 100);
    expect([0, 1, 2, 3, 4].map((i) => held.get(hash(i)) !== undefined)).toEqual([false, false, true, true, true]);
    expect(held.get(hash(3))).toEqual({ tx: tx(3), hash: hash(3), size: 100 });
    held.forget([hash(3), hash(9)]);
    expect(held.get(hash(3))).toBeUndefined();
    expect([held.size, held.bytes]).toEqual([2, 200]);
  });

  it('forgets the oldest past its bytes, and never holds one larger than all of them', () => {
    const held = new AdmittedTxs(1000, 1000);
    held.add(hash(1), tx(1), 400);
    held.add(hash(2), tx(2), 400);
    held.add(hash(3), tx(3), 400); // 1,200 bytes: the oldest goes
    expect([held.get(hash(1)), held.bytes]).toEqual([undefined, 800]);
    held.add(hash(4), tx(4), 1001);
    expect([held.get(hash(4)), held.size, held.bytes]).toEqual([undefined, 2, 800]);
    held.add(hash(2), tx(2), 400); // already held: counted once
    expect(held.bytes).toBe(800);
  });
});
