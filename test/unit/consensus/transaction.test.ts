import { describe, expect, it } from 'vitest';
import { codeOf } from '../../helpers/chain-error.js';
import {
  Ed25519Signer,
  checkTxStateless,
  generateEd25519KeyPair,
  recheckTxLimits,
  signTx,
  txHash,
  verifyEd25519,
  type TxBody,
} from '../../../consensus/index.js';

const signer = new Ed25519Signer(generateEd25519KeyPair().privateKey);
const body = (over: Partial<TxBody> = {}): TxBody => ({
  chainId: 'test-chain',
  from: signer.publicKey,
  nonce: 0,
  contract: 'counter',
  method: 'increment',
  args: [],
  gasLimit: 100_000,
  ...over,
});


describe('transactions', () => {
  it('accepts a well-signed transaction and hashes it deterministically', () => {
    const tx = signTx(body(), signer);
    const checked = checkTxStateless(tx, 'test-chain');
    expect(checked.hash).toBe(txHash(tx));
    expect(checked.hash).toMatch(/^[0-9a-f]{64}$/);
    // Field order does not change the hash.
    const reordered = Object.fromEntries(Object.entries(tx).reverse());
    expect(checkTxStateless(reordered, 'test-chain').hash).toBe(checked.hash);
  });

  it('refuses a changed field (bad signature)', () => {
    const tx = signTx(body(), signer);
    expect(codeOf(() => checkTxStateless({ ...tx, nonce: 1 }, 'test-chain'))).toBe('TX_BAD_SIGNATURE');
    expect(codeOf(() => checkTxStateless({ ...tx, args: [1] }, 'test-chain'))).toBe('TX_BAD_SIGNATURE');
  });

  it('refuses another chain', () => {
    const tx = signTx(body({ chainId: 'other-chain' }), signer);
    expect(codeOf(() => checkTxStateless(tx, 'test-chain'))).toBe('TX_WRONG_CHAIN');
  });

  it('refuses oversized transactions before checking the signature', () => {
    const tx = signTx(body({ args: ['x'.repeat(40_000)] }), signer);
    expect(codeOf(() => checkTxStateless(tx, 'test-chain'))).toBe('TX_TOO_LARGE');
  });

  it('refuses a gas limit above the maximum', () => {
    const tx = signTx(body({ gasLimit: 10 ** 12 }), signer);
    expect(codeOf(() => checkTxStateless(tx, 'test-chain'))).toBe('TX_GAS_LIMIT');
  });

  it.each([
    ['not an object', 'hello'],
    ['an array', []],
    ['null', null],
    ['an unknown field', { ...signTx(body(), signer), extra: 1 }],
    ['a negative nonce', { ...signTx(body(), signer), nonce: -1 }],
    ['a float nonce', { ...signTx(body(), signer), nonce: 1.5 }],
    ['a bad contract name', { ...signTx(body(), signer), contract: 'Bad Name' }],
    ['a bad method name', { ...signTx(body(), signer), method: '1x' }],
    ['args not an array', { ...signTx(body(), signer), args: {} }],
    ['a float in args', { ...signTx(body(), signer), args: [0.5] }],
    ['a short signature', { ...signTx(body(), signer), signature: 'ab' }],
    ['an upper-case key', { ...signTx(body(), signer), from: signer.publicKey.toUpperCase() }],
    ['a zero gas limit', { ...signTx(body(), signer), gasLimit: 0 }],
  ])('refuses %s as TX_MALFORMED', (_, raw) => {
    expect(codeOf(() => checkTxStateless(raw, 'test-chain'))).toBe('TX_MALFORMED');
  });

  it('verifyEd25519 returns false for malformed keys and signatures, never throws', () => {
    const msg = new Uint8Array([1, 2, 3]);
    const sig = signer.sign(msg);
    expect(verifyEd25519(signer.publicKey, msg, sig)).toBe(true);
    expect(verifyEd25519('00', msg, sig)).toBe(false);
    expect(verifyEd25519(signer.publicKey, msg, 'zz')).toBe(false);
    expect(verifyEd25519('ff'.repeat(32), msg, sig)).toBe(false);
  });
});

describe('a transaction checked before, checked again against the limits of now', () => {
  it('passes under the same limits and fails, with the same codes as a full check, under tighter ones', () => {
    const tx = signTx(body({ gasLimit: 100_000 }), signer);
    const limits = { maxTxBytes: 10_000, maxGasLimit: 1_000_000 };
    const checked = checkTxStateless(tx, 'test-chain', limits);
    expect(recheckTxLimits(checked, 'test-chain', limits)).toBe(checked);
    const tighter = [
      [{ ...limits, maxGasLimit: 99_999 }, 'test-chain'],
      [{ ...limits, maxTxBytes: checked.size - 1 }, 'test-chain'],
      [limits, 'other-chain'],
    ] as const;
    for (const [l, chain] of tighter) {
      expect(codeOf(() => recheckTxLimits(checked, chain, l))).toBe(codeOf(() => checkTxStateless(tx, chain, l)));
    }
    expect(tighter.map(([l, chain]) => codeOf(() => recheckTxLimits(checked, chain, l)))).toEqual(['TX_GAS_LIMIT', 'TX_TOO_LARGE', 'TX_WRONG_CHAIN']);
  });
});
