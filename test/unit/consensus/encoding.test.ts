import { describe, expect, it } from 'vitest';
import { ChainError, canonicalize, fromHex, isCanonicalJsonValue, toHex } from '../../../consensus/index.js';

describe('canonical JSON', () => {
  it('sorts keys at every depth and drops whitespace', () => {
    expect(canonicalize({ b: 1, a: { d: [3, { z: null, y: true }], c: 'x' } })).toBe('{"a":{"c":"x","d":[3,{"y":true,"z":null}]},"b":1}');
  });

  it('gives the same text whatever the insertion order', () => {
    expect(canonicalize({ x: 1, y: 2 })).toBe(canonicalize({ y: 2, x: 1 }));
  });

  it('escapes strings as JSON does and keeps unicode', () => {
    expect(canonicalize({ s: 'a"b\\c\n\u00e9' })).toBe('{"s":"a\\"b\\\\c\\n\u00e9"}');
  });

  it.each([
    ['a float', 1.5],
    ['NaN', Number.NaN],
    ['infinity', Number.POSITIVE_INFINITY],
    ['an unsafe integer', 2 ** 53],
    ['undefined', undefined],
    ['a bigint', 10n],
    ['a function', () => 1],
    ['a Date', new Date(0)],
    ['an undefined member', { a: undefined }],
  ])('refuses %s with ENCODING_INVALID', (_, value) => {
    try {
      canonicalize(value);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ChainError);
      expect((err as ChainError).code).toBe('ENCODING_INVALID');
    }
  });

  it('refuses values nested deeper than 64', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 70; i++) deep = [deep];
    expect(isCanonicalJsonValue(deep)).toBe(false);
  });

  it('writes -0 as 0', () => {
    expect(canonicalize(-0)).toBe('0');
  });
});

describe('hex', () => {
  it('round-trips bytes', () => {
    const bytes = new Uint8Array([0, 1, 254, 255]);
    expect(toHex(bytes)).toBe('0001feff');
    expect(fromHex('0001feff')).toEqual(bytes);
  });

  it('refuses upper case, odd length and other characters', () => {
    expect(fromHex('AB')).toBeUndefined();
    expect(fromHex('abc')).toBeUndefined();
    expect(fromHex('zz')).toBeUndefined();
  });
});
