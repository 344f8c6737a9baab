import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../attestation/internal/canonical.js';
import { canonicalize } from '../../../consensus/index.js';

// attestation/ may import nothing of the project, so it carries its own copy of
// the canonical JSON rules. This keeps the two byte-for-byte the same.
describe('canonical JSON in attestation/ and consensus/', () => {
  const vectors: unknown[] = [
    null,
    true,
    0,
    -0,
    -42,
    Number.MAX_SAFE_INTEGER,
    '',
    'a"b\\c\n\u00e9\u2028\u0001😀',
    [],
    [1, 'two', [3], { four: 4 }],
    { b: 1, a: { d: [3, { z: null, y: true }], c: 'x' }, 'é': 1, A: 2, _: 3 },
    { publicKeys: { vote: 'ab'.repeat(32), encryption: 'cd'.repeat(32) }, chainId: 'c', nodeId: 'n', freshness: 'f' },
  ];

  it.each(vectors.map((v) => [JSON.stringify(v), v]))('encodes %s identically', (_, value) => {
    expect(canonicalJson(value)).toBe(canonicalize(value));
  });

  it.each([[1.5], [Number.NaN], [2 ** 53], [{ a: undefined }]])('both refuse %s', (value) => {
    expect(() => canonicalJson(value)).toThrow();
    expect(() => canonicalize(value)).toThrow();
  });
});
