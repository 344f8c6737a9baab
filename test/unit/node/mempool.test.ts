import { describe, expect, it, vi } from 'vitest';
import { ChainError, Ed25519Signer, checkTxStateless, generateEd25519KeyPair, signTx, type CheckedTx } from '../../../consensus/index.js';
import { Mempool } from '../../../node/mempool/mempool.js';

const alice = new Ed25519Signer(generateEd25519KeyPair().privateKey);
const bob = new Ed25519Signer(generateEd25519KeyPair().privateKey);

function tx(signer: Ed25519Signer, nonce: number, args: number[] = []): CheckedTx {
  const signed = signTx(
    { chainId: 'c', from: signer.publicKey, nonce, contract: 'counter', method: 'increment', args, gasLimit: 1000 },
    signer,
  );
  return checkTxStateless(signed, 'c');
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as ChainError).code;
  }
  return 'no error';
}

describe('mempool', () => {
  it('accepts nonces in order per sender and hands them out oldest first', () => {
    const pool = new Mempool();
    pool.add(tx(alice, 0), 0);
    pool.add(tx(bob, 3), 3);
    pool.add(tx(alice, 1), 0);
    expect(pool.take(10, 1e9).map((t) => [t.from, t.nonce])).toEqual([
      [alice.publicKey, 0],
      [bob.publicKey, 3],
      [alice.publicKey, 1],
    ]);
    expect(pool.nextNonce(alice.publicKey, 0)).toBe(2);
  });

  it('refuses duplicates, replayed nonces and gaps, and changes nothing', () => {
    const pool = new Mempool();
    const first = tx(alice, 0);
    pool.add(first, 0);
    expect(codeOf(() => pool.add(first, 0))).toBe('TX_DUPLICATE');
    expect(codeOf(() => pool.add(tx(alice, 0, [1]), 0))).toBe('TX_NONCE_TOO_LOW');
    expect(codeOf(() => pool.add(tx(alice, 66), 0))).toBe('TX_NONCE_GAP');
    expect(codeOf(() => pool.add(tx(bob, 0), 4))).toBe('TX_NONCE_TOO_LOW');
    expect(pool.size).toBe(1);
    expect(pool.queuedSize).toBe(0);
  });

  it('holds a transaction a little ahead until the gap fills, then hands it out in nonce order', () => {
    const pool = new Mempool();
    const a2 = tx(alice, 2);
    pool.add(a2, 0);
    pool.add(tx(alice, 3), 0);
    expect(codeOf(() => pool.add(tx(alice, 2, [7]), 0))).toBe('TX_DUPLICATE');
    expect(codeOf(() => pool.add(a2, 0))).toBe('TX_DUPLICATE');
    expect(pool.size).toBe(0);
    expect(pool.queuedSize).toBe(2);
    expect(pool.get(a2.hash)).toEqual(a2.tx);
    expect(pool.take(10, 1e9)).toEqual([]);
    pool.add(tx(alice, 1), 0);
    expect(pool.size).toBe(0);
    pool.add(tx(alice, 0), 0);
    expect(pool.take(10, 1e9).map((t) => t.nonce)).toEqual([0, 1, 2, 3]);
    expect(pool.queuedSize).toBe(0);
    expect(pool.nextNonce(alice.publicKey, 0)).toBe(4);
  });

  it('promotes a queued transaction when a block commits the nonces before it', () => {
    const pool = new Mempool();
    pool.add(tx(alice, 3), 0);
    pool.add(tx(alice, 1), 0);
    // Another node's block committed alice's nonces 0..2 (her 1 here is stale now).
    pool.remove([]);
    pool.committed(alice.publicKey, 3);
    expect(pool.take(10, 1e9).map((t) => t.nonce)).toEqual([3]);
    expect(pool.queuedSize).toBe(0);
  });

  it('bounds the queue (the longest waiting gives way), and a refused transaction drops its sender\'s queue too', () => {
    const pool = new Mempool({ maxQueued: 2 });
    const a5 = tx(alice, 5);
    pool.add(a5, 0);
    pool.add(tx(alice, 6), 0);
    const b5 = tx(bob, 5);
    pool.add(b5, 0);
    expect(pool.queuedSize).toBe(2);
    expect(pool.has(a5.hash)).toBe(false);
    expect(pool.has(b5.hash)).toBe(true);
    pool.remove([b5.hash]);
    const a0 = tx(alice, 0);
    pool.add(a0, 0);
    pool.remove([], [a0.hash]);
    expect(pool.queuedSize).toBe(0);
    expect(pool.size).toBe(0);
  });

  it('is bounded in total and per sender', () => {
    const pool = new Mempool({ maxTxs: 3, maxPerSender: 2 });
    pool.add(tx(alice, 0), 0);
    pool.add(tx(alice, 1), 0);
    expect(codeOf(() => pool.add(tx(alice, 2), 0))).toBe('MEMPOOL_FULL');
    pool.add(tx(bob, 0), 0);
    const carol = new Ed25519Signer(generateEd25519KeyPair().privateKey);
    expect(codeOf(() => pool.add(tx(carol, 0), 0))).toBe('MEMPOOL_FULL');
  });

  it('removes included transactions and keeps the sender chain going', () => {
    const pool = new Mempool();
    const a0 = tx(alice, 0);
    const a1 = tx(alice, 1);
    pool.add(a0, 0);
    pool.add(a1, 0);
    pool.remove([a0.hash]);
    expect(pool.size).toBe(1);
    expect(pool.nextNonce(alice.publicKey, 1)).toBe(2);
    pool.remove([a1.hash]);
    expect(pool.nextNonce(alice.publicKey, 2)).toBe(2);
  });

  it('drops a refused transaction and the sender transactions after it', () => {
    const pool = new Mempool();
    const a0 = tx(alice, 0);
    pool.add(a0, 0);
    pool.add(tx(alice, 1), 0);
    pool.add(tx(bob, 0), 0);
    pool.remove([], [a0.hash]);
    expect(pool.take(10, 1e9).map((t) => t.from)).toEqual([bob.publicKey]);
    expect(pool.nextNonce(alice.publicKey, 0)).toBe(0);
  });

  it('wakes a waiter when a transaction arrives', async () => {
    const pool = new Mempool();
    const woken = pool.whenNotEmpty();
    pool.add(tx(alice, 0), 0);
    await expect(woken).resolves.toBeUndefined();
  });

  it('gives up waiting after maxWaitMs, and a later arrival still wakes the next waiter', async () => {
    vi.useFakeTimers();
    try {
      const pool = new Mempool();
      let idle = false;
      const timedOut = pool.whenNotEmpty(500).then(() => (idle = true));
      await vi.advanceTimersByTimeAsync(499);
      expect(idle).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await timedOut;
      expect(pool.size).toBe(0);
      const woken = pool.whenNotEmpty(10_000);
      pool.add(tx(alice, 0), 0);
      await expect(woken).resolves.toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });

  it('respects the byte budget when taking', () => {
    const pool = new Mempool();
    const a = tx(alice, 0);
    pool.add(a, 0);
    pool.add(tx(bob, 0), 0);
    expect(pool.take(10, a.size)).toHaveLength(1);
  });
});
