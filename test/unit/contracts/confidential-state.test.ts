/**
 * Confidential contract state (contracts/enclave/confidential-state.ts) and the
 * consortium-secret generations an enclave holds (contracts/enclave/consortium-keys.ts).
 * Real HMAC, HKDF and AES-GCM throughout.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { codeOf } from '../../helpers/chain-error.js';
import { networkKeyPair, toHex, type JsonValue } from '../../../consensus/index.js';
import {
  CommittedState,
  ConsortiumKeys,
  STATE_KEY_GENERATION,
  StateCipher,
  StateOverlay,
  confidentialStateAccess,
  type StateWrite,
} from '../../../contracts/index.js';

const bytes = (n: number): Uint8Array => new Uint8Array(randomBytes(n));


/** A state cipher as an enclave derives it: from a committed generation-1 secret, for one contract. */
function cipherFor(secret: Uint8Array, contract = 'analytics'): StateCipher {
  const keys = new ConsortiumKeys();
  const g = keys.hold(STATE_KEY_GENERATION, secret);
  keys.setCommitted(new Map([[STATE_KEY_GENERATION, g.publicKey]]));
  const cipher = keys.stateCipher(contract);
  expect(cipher).toBeDefined();
  return cipher!;
}

/** Runs writes through a fresh overlay and returns its write set. */
function writeSetOf(cipher: StateCipher, writes: [string, JsonValue][], contract = 'analytics'): StateWrite[] {
  const overlay = new StateOverlay(new CommittedState());
  const access = confidentialStateAccess(overlay, contract, cipher);
  for (const [key, value] of writes) access.set(key, value);
  return overlay.writeSet();
}

/** The committed state holding exactly these stored entries (as a node would load them at start). */
function committed(entries: readonly StateWrite[]): CommittedState {
  const state = new CommittedState();
  state.load(entries.map(([k, v]) => [k, v!] as const));
  return state;
}

function readBack(entries: readonly StateWrite[], cipher: StateCipher, key: string, contract = 'analytics'): JsonValue | null {
  return confidentialStateAccess(new StateOverlay(committed(entries)), contract, cipher).get(key);
}

describe('confidential contract state', () => {
  const secret = bytes(32);
  const cipher = cipherFor(secret);

  it('stores neither the key nor the value in the clear, and reads back the value written', () => {
    const writes = writeSetOf(cipher, [['stats:oncology', { count: 3 }]]);
    expect(writes).toHaveLength(1);
    const [storedKey, storedValue] = writes[0]!;
    expect(storedKey.startsWith('c:analytics:~')).toBe(true);
    expect(storedKey).toMatch(/^c:analytics:~[0-9a-f]{64}$/);
    expect(storedKey).not.toContain('stats');
    expect(storedKey).not.toContain('oncology');
    expect(storedValue).not.toBeNull();
    expect(storedValue).not.toContain('count');
    expect(storedValue).not.toContain('{"count":3}');
    expect(storedValue).not.toContain('oncology');
    // The stored value is the canonical JSON of a string "<generation>:<base64>", and the base64 hides the JSON too.
    const inner = JSON.parse(storedValue!) as string;
    expect(inner).toMatch(/^1:[A-Za-z0-9+/]+={0,2}$/);
    const sealedBytes = Buffer.from(inner.slice(2), 'base64');
    expect(sealedBytes.toString('latin1')).not.toContain('count');
    // 12-byte IV, the ciphertext (as long as the plaintext) and a 16-byte tag.
    expect(sealedBytes.length).toBe(12 + '{"count":3}'.length + 16);

    expect(readBack(writes, cipher, 'stats:oncology')).toEqual({ count: 3 });
  });

  it('reads its own writes within the overlay, deletes, and reads null for a key never written', () => {
    const overlay = new StateOverlay(new CommittedState());
    const access = confidentialStateAccess(overlay, 'analytics', cipher);
    expect(access.get('stats:oncology')).toBeNull();
    access.set('stats:oncology', { count: 3 });
    expect(access.get('stats:oncology')).toEqual({ count: 3 });
    access.set('stats:oncology', { count: 4 });
    expect(access.get('stats:oncology')).toEqual({ count: 4 });
    access.delete('stats:oncology');
    expect(access.get('stats:oncology')).toBeNull();
    // A delete is written under the same stored key, as a null.
    expect(overlay.writeSet()).toEqual([[cipher.storedKey('analytics', 'stats:oncology'), null]]);
  });

  it('round-trips every kind of JSON value', () => {
    const values: JsonValue[] = [null, true, false, 0, -1, Number.MAX_SAFE_INTEGER, '', 'naïve ünïcode ✓', [], [1, [2, [3]]], { a: { b: ['c'] } }];
    const writes = writeSetOf(cipher, values.map((v, i) => [`k${i}`, v]));
    values.forEach((v, i) => expect(readBack(writes, cipher, `k${i}`)).toEqual(v));
  });

  it('writes byte-identical state in every enclave holding the same secret', () => {
    const writes: [string, JsonValue][] = [
      ['stats:oncology', { count: 3 }],
      ['stats:cardiology', { count: 9 }],
      ['patients', ['p1', 'p2']],
    ];
    const a = writeSetOf(cipherFor(Uint8Array.from(secret)), writes);
    const b = writeSetOf(cipherFor(Uint8Array.from(secret)), writes);
    expect(b).toEqual(a);
    // The same write again (a later block) stores the same bytes: the IV is synthetic, not random.
    expect(writeSetOf(cipher, writes)).toEqual(a);
    // And through the key material directly, without ConsortiumKeys.
    const material = bytes(64);
    expect(writeSetOf(new StateCipher(Uint8Array.from(material), 1), writes)).toEqual(writeSetOf(new StateCipher(Uint8Array.from(material), 1), writes));
  });

  it('stores under different keys for another secret or another contract', () => {
    const mine = writeSetOf(cipher, [['stats:oncology', { count: 3 }]]);
    const otherSecret = writeSetOf(cipherFor(bytes(32)), [['stats:oncology', { count: 3 }]]);
    expect(otherSecret[0]![0]).not.toBe(mine[0]![0]);
    expect(otherSecret[0]![1]).not.toBe(mine[0]![1]);
    // Another contract under the same secret: another state key entirely, not only another prefix.
    const payroll = cipherFor(secret, 'payroll');
    const theirs = writeSetOf(payroll, [['stats:oncology', { count: 3 }]], 'payroll');
    expect(theirs[0]![0].startsWith('c:payroll:~')).toBe(true);
    expect(theirs[0]![0].slice('c:payroll:'.length)).not.toBe(mine[0]![0].slice('c:analytics:'.length));
    // Its cipher does not open the other contract's values.
    expect(codeOf(() => payroll.open(mine[0]![0], JSON.parse(mine[0]![1]!) as string))).toBe('STATE_INVALID');
  });

  it('seals the same value differently under different keys, and differently for different values', () => {
    const writes = writeSetOf(cipher, [
      ['a', { count: 3 }],
      ['b', { count: 3 }],
      ['c', { count: 4 }],
    ]);
    const values = writes.map(([, v]) => v);
    expect(new Set(values).size).toBe(3);
    // Not even the IV repeats across keys.
    const ivs = values.map((v) => Buffer.from((JSON.parse(v!) as string).slice(2), 'base64').subarray(0, 12).toString('hex'));
    expect(new Set(ivs).size).toBe(3);
  });

  it('commits to a state root that is reproducible and depends on the secret', () => {
    const writes: [string, JsonValue][] = [
      ['stats:oncology', { count: 3 }],
      ['stats:cardiology', { count: 9 }],
    ];
    const entries = writeSetOf(cipher, writes);
    const root = committed(entries).root;
    expect(root).toMatch(/^[0-9a-f]{64}$/);
    expect(committed(entries).root).toBe(root);
    expect(committed([...entries].reverse()).root).toBe(root);
    expect(committed(writeSetOf(cipherFor(Uint8Array.from(secret)), writes)).root).toBe(root);
    expect(committed(writeSetOf(cipherFor(bytes(32)), writes)).root).not.toBe(root);
    // A different value changes the root.
    expect(committed(writeSetOf(cipher, [['stats:oncology', { count: 4 }], writes[1]!])).root).not.toBe(root);
    // Applying the write set as a block gives the same root as loading it.
    const state = new CommittedState();
    state.load([]);
    state.apply(entries);
    expect(state.root).toBe(root);
  });

  it('refuses a stored value with any character of its ciphertext changed', () => {
    const entries = writeSetOf(cipher, [['stats:oncology', { count: 3 }]]);
    const [storedKey, storedValue] = entries[0]!;
    const inner = JSON.parse(storedValue!) as string;
    const prefix = '1:';
    const body = inner.slice(prefix.length);
    // Every character except the last base64 quantum (whose padding bits a lenient decoder may ignore).
    for (let i = 0; i < body.length - 4; i++) {
      const replacement = body[i] === 'A' ? 'B' : 'A';
      const tampered = prefix + body.slice(0, i) + replacement + body.slice(i + 1);
      expect(codeOf(() => readBack([[storedKey, JSON.stringify(tampered)]], cipher, 'stats:oncology')), `position ${i}`).toBe('STATE_INVALID');
    }
    // One bit of the tag.
    const raw = Buffer.from(body, 'base64');
    raw[raw.length - 1]! ^= 0x01;
    expect(codeOf(() => readBack([[storedKey, JSON.stringify(prefix + raw.toString('base64'))]], cipher, 'stats:oncology'))).toBe('STATE_INVALID');
    // Truncated below an IV and a tag, or empty.
    expect(codeOf(() => readBack([[storedKey, JSON.stringify(prefix + raw.subarray(0, 27).toString('base64'))]], cipher, 'stats:oncology'))).toBe('STATE_INVALID');
    expect(codeOf(() => readBack([[storedKey, JSON.stringify(prefix)]], cipher, 'stats:oncology'))).toBe('STATE_INVALID');
    // The untouched value still opens.
    expect(readBack(entries, cipher, 'stats:oncology')).toEqual({ count: 3 });
  });

  it('refuses a value of another generation, or one without a generation', () => {
    const entries = writeSetOf(cipher, [['stats:oncology', { count: 3 }]]);
    const [storedKey, storedValue] = entries[0]!;
    const body = (JSON.parse(storedValue!) as string).slice(2);
    for (const inner of [`2:${body}`, `0:${body}`, `:${body}`, body, `x:${body}`]) {
      expect(codeOf(() => readBack([[storedKey, JSON.stringify(inner)]], cipher, 'stats:oncology')), inner.slice(0, 3)).toBe('STATE_INVALID');
    }
    // The untouched value still opens.
    expect(readBack(entries, cipher, 'stats:oncology')).toEqual({ count: 3 });
  });

  it('seals a write only when the write set is made: once per key and block, with its final value, never for a discarded transaction', () => {
    const secret = bytes(32);
    const c = cipherFor(secret);
    const seal = vi.spyOn(c, 'seal');
    const block = new StateOverlay(new CommittedState());
    for (let i = 0; i < 5; i++) {
      const tx = new StateOverlay(block);
      const access = confidentialStateAccess(tx, 'analytics', c);
      access.set('balance', ((access.get('balance') as number | null) ?? 0) + 1);
      tx.mergeInto(block);
    }
    // A transaction that failed: its overlay is dropped, its write never sealed.
    confidentialStateAccess(new StateOverlay(block), 'analytics', c).set('refund', 1);
    expect(seal).not.toHaveBeenCalled();
    const writes = block.writeSet();
    expect(seal).toHaveBeenCalledTimes(1);
    expect(block.writeSet()).toEqual(writes);
    expect(seal).toHaveBeenCalledTimes(1);
    // The same bytes as sealing the final value directly, and they read back.
    expect(writes).toEqual(writeSetOf(cipherFor(Uint8Array.from(secret)), [['balance', 5]]));
    expect(readBack(writes, c, 'balance')).toBe(5);
    // A plain read of the overlay (as the block's other readers make) gives the sealed form, never the plaintext.
    const [storedKey, storedValue] = writes[0]!;
    expect(block.read(storedKey)).toBe(storedValue);
    expect(storedValue!.startsWith('"1:')).toBe(true);
  });

  it('binds each value to its stored key: values swapped between keys do not open', () => {
    // The same cipher sealed both values, so it remembers each under its own stored key: a swapped pair is opened for real, and refused.
    const entries = writeSetOf(cipher, [
      ['stats:oncology', { count: 3 }],
      ['stats:cardiology', { count: 9 }],
    ]);
    const [[k1, v1], [k2, v2]] = entries as [[string, string], [string, string]];
    const swapped: StateWrite[] = [
      [k1, v2],
      [k2, v1],
    ];
    expect(codeOf(() => readBack(swapped, cipher, 'stats:oncology'))).toBe('STATE_INVALID');
    expect(codeOf(() => readBack(swapped, cipher, 'stats:cardiology'))).toBe('STATE_INVALID');
    // A value copied to a key that had none.
    const k3 = cipher.storedKey('analytics', 'stats:neurology');
    expect(codeOf(() => readBack([...entries, [k3, v1]], cipher, 'stats:neurology'))).toBe('STATE_INVALID');
    // In their own places they open.
    expect(readBack(entries, cipher, 'stats:oncology')).toEqual({ count: 3 });
    expect(readBack(entries, cipher, 'stats:cardiology')).toEqual({ count: 9 });
  });

  it('seals and opens directly: open is the inverse of seal, only under its stored key and generation', () => {
    const material = bytes(64);
    const one = new StateCipher(material, 1);
    const two = new StateCipher(material, 2);
    const key = one.storedKey('analytics', 'k');
    expect(two.storedKey('analytics', 'k')).toBe(key);
    const sealed = one.seal(key, 'plain text');
    expect(sealed.startsWith('1:')).toBe(true);
    expect(one.open(key, sealed)).toBe('plain text');
    expect(codeOf(() => two.open(key, sealed))).toBe('STATE_INVALID');
    expect(two.open(key, two.seal(key, 'plain text'))).toBe('plain text');
    expect(codeOf(() => one.open(one.storedKey('analytics', 'other'), sealed))).toBe('STATE_INVALID');
    // Key material that differs only in the encryption half: same stored key, value does not open.
    const changed = Uint8Array.from(material);
    changed[40]! ^= 1;
    const sibling = new StateCipher(changed, 1);
    expect(sibling.storedKey('analytics', 'k')).toBe(key);
    expect(codeOf(() => sibling.open(key, sealed))).toBe('STATE_INVALID');
    // Differs only in the MAC half: another stored key.
    const macChanged = Uint8Array.from(material);
    macChanged[0]! ^= 1;
    expect(new StateCipher(macChanged, 1).storedKey('analytics', 'k')).not.toBe(key);
  });

  it('takes only 64 bytes of key material', () => {
    expect(codeOf(() => new StateCipher(bytes(32), 1))).toBe('INVALID_ARGS');
    expect(codeOf(() => new StateCipher(bytes(65), 1))).toBe('INVALID_ARGS');
  });
});

describe('the consortium keys an enclave holds', () => {
  it('offer the held generation-1 secret as a candidate while nothing is committed, usable for nothing yet', () => {
    const keys = new ConsortiumKeys();
    const secret = ConsortiumKeys.newSecret();
    expect(secret).toHaveLength(32);
    expect(toHex(ConsortiumKeys.newSecret())).not.toBe(toHex(secret));
    expect(keys.candidate()).toBeUndefined();
    const g = keys.hold(1, secret);
    expect(g.generation).toBe(1);
    expect(g.publicKey).toBe(toHex(networkKeyPair(secret).publicKey));
    expect(keys.candidate()?.generation).toBe(1);
    expect(keys.candidate()?.publicKey).toBe(g.publicKey);
    expect(keys.usable(1)).toBeUndefined();
    expect(keys.latest()).toBeUndefined();
    expect(keys.missing()).toEqual([]);
    expect(keys.usableAll()).toEqual([]);
    expect(keys.isCommitted(1)).toBe(false);
    expect(keys.stateCipher('x')).toBeUndefined();
    expect(keys.snapshot()).toEqual({ committed: [], held: [] });
  });

  it('make the held secret usable once the ledger commits its public key', () => {
    const keys = new ConsortiumKeys();
    const secret = ConsortiumKeys.newSecret();
    const pub = ConsortiumKeys.generationOf(1, secret).publicKey;
    keys.hold(1, secret);
    expect(keys.setCommitted(new Map([[1, pub]]))).toEqual([]);
    expect(keys.usable(1)).toBeDefined();
    expect(toHex(keys.usable(1)!.secret)).toBe(toHex(secret));
    expect(toHex(keys.usable(1)!.network.publicKey)).toBe(pub);
    expect(keys.missing()).toEqual([]);
    expect(keys.latest()?.publicKey).toBe(pub);
    expect(keys.candidate()).toBeUndefined();
    expect(keys.isCommitted(1)).toBe(true);
    expect(keys.usableAll().map((g) => g.generation)).toEqual([1]);
    expect(keys.committedGenerations()).toEqual(new Map([[1, pub]]));
    expect(keys.stateCipher('x')).toBeInstanceOf(StateCipher);
    expect(keys.stateCipher('x')!.generation).toBe(STATE_KEY_GENERATION);
    // One cipher per contract, and the same one each time.
    expect(keys.stateCipher('x')).toBe(keys.stateCipher('x'));
    expect(keys.stateCipher('y')!.storedKey('y', 'k').slice(4)).not.toBe(keys.stateCipher('x')!.storedKey('x', 'k').slice(4));
  });

  it('drop a candidate the ledger did not commit, and say it lost', () => {
    const keys = new ConsortiumKeys();
    keys.hold(1, ConsortiumKeys.newSecret());
    const winner = ConsortiumKeys.generationOf(1, ConsortiumKeys.newSecret()).publicKey;
    expect(keys.setCommitted(new Map([[1, winner]]))).toEqual([1]);
    expect(keys.usable(1)).toBeUndefined();
    expect(keys.missing()).toEqual([1]);
    expect(keys.latest()).toBeUndefined();
    expect(keys.candidate()).toBeUndefined();
    expect(keys.stateCipher('x')).toBeUndefined();
    // The loser is gone: committing again reports nothing more to drop.
    expect(keys.setCommitted(new Map([[1, winner]]))).toEqual([]);
  });

  it('take the committed secret when it arrives later (a release from a peer)', () => {
    const secret = ConsortiumKeys.newSecret();
    const pub = ConsortiumKeys.generationOf(1, secret).publicKey;
    const keys = new ConsortiumKeys();
    keys.setCommitted(new Map([[1, pub]]));
    expect(keys.missing()).toEqual([1]);
    expect(keys.stateCipher('x')).toBeUndefined();
    keys.hold(1, secret);
    expect(keys.missing()).toEqual([]);
    expect(keys.stateCipher('x')).toBeDefined();
  });

  it('give no state cipher after the state-key secret is dropped or replaced by one that is not committed', () => {
    const secret = ConsortiumKeys.newSecret();
    const keys = new ConsortiumKeys();
    const g = keys.hold(1, secret);
    keys.setCommitted(new Map([[1, g.publicKey]]));
    expect(keys.stateCipher('x')).toBeDefined();
    keys.hold(1, ConsortiumKeys.newSecret());
    expect(keys.usable(1)).toBeUndefined();
    expect(keys.stateCipher('x')).toBeUndefined();
    keys.hold(1, secret);
    expect(keys.stateCipher('x')).toBeDefined();
    keys.drop(1);
    expect(keys.stateCipher('x')).toBeUndefined();
    expect(keys.missing()).toEqual([1]);
  });

  it('give the same state cipher for the same secret in every enclave', () => {
    const secret = ConsortiumKeys.newSecret();
    const a = cipherFor(secret, 'analytics');
    const b = cipherFor(Uint8Array.from(secret), 'analytics');
    const key = a.storedKey('analytics', 'stats:oncology');
    expect(b.storedKey('analytics', 'stats:oncology')).toBe(key);
    expect(b.seal(key, '{"count":3}')).toBe(a.seal(key, '{"count":3}'));
    expect(b.open(key, a.seal(key, '{"count":3}'))).toBe('{"count":3}');
  });

  it('name the newest committed generation as latest, and which committed generations are missing', () => {
    const s1 = ConsortiumKeys.newSecret();
    const s2 = ConsortiumKeys.newSecret();
    const p1 = ConsortiumKeys.generationOf(1, s1).publicKey;
    const p2 = ConsortiumKeys.generationOf(2, s2).publicKey;
    const keys = new ConsortiumKeys();
    keys.hold(1, s1);
    keys.setCommitted(new Map([[2, p2], [1, p1]]));
    expect(keys.missing()).toEqual([2]);
    expect(keys.usableAll().map((g) => g.generation)).toEqual([1]);
    // Clients must seal to the newest generation: while it is missing there is no latest to offer.
    expect(keys.latest()).toBeUndefined();
    keys.hold(2, s2);
    expect(keys.missing()).toEqual([]);
    expect(keys.latest()?.generation).toBe(2);
    expect(keys.latest()?.publicKey).toBe(p2);
    expect(keys.usableAll().map((g) => g.generation)).toEqual([1, 2]);
    // The state key stays with generation 1.
    expect(keys.stateCipher('x')!.storedKey('x', 'k')).toBe(cipherFor(s1, 'x').storedKey('x', 'k'));
  });

  it('hand over a snapshot of only the committed generations held, which rebuilds the same keys', () => {
    const s1 = ConsortiumKeys.newSecret();
    const keys = new ConsortiumKeys();
    const g1 = keys.hold(1, s1);
    keys.hold(2, ConsortiumKeys.newSecret()); // held, but not committed
    keys.setCommitted(new Map([[1, g1.publicKey]]));
    const snapshot = keys.snapshot();
    expect(snapshot).toEqual({ committed: [[1, g1.publicKey]], held: [[1, toHex(s1)]] });
    // It crosses a thread boundary as data.
    const copy = ConsortiumKeys.fromSnapshot(JSON.parse(JSON.stringify(snapshot)));
    expect(copy.usable(1)?.publicKey).toBe(g1.publicKey);
    expect(toHex(copy.usable(1)!.secret)).toBe(toHex(s1));
    expect(copy.usable(2)).toBeUndefined();
    expect(copy.missing()).toEqual([]);
    expect(copy.latest()?.publicKey).toBe(g1.publicKey);
    expect(copy.committedGenerations()).toEqual(keys.committedGenerations());
    const original = keys.stateCipher('analytics')!;
    const rebuilt = copy.stateCipher('analytics')!;
    const key = original.storedKey('analytics', 'stats:oncology');
    expect(rebuilt.storedKey('analytics', 'stats:oncology')).toBe(key);
    expect(rebuilt.seal(key, 'v')).toBe(original.seal(key, 'v'));
    expect(writeSetOf(rebuilt, [['k', { count: 3 }]])).toEqual(writeSetOf(original, [['k', { count: 3 }]]));
    expect(copy.snapshot()).toEqual(snapshot);
  });

  it('rebuild from a snapshot with a committed generation not yet held as missing', () => {
    const pub = ConsortiumKeys.generationOf(1, ConsortiumKeys.newSecret()).publicKey;
    const copy = ConsortiumKeys.fromSnapshot({ committed: [[1, pub]], held: [] });
    expect(copy.missing()).toEqual([1]);
    expect(copy.stateCipher('x')).toBeUndefined();
    expect(copy.candidate()).toBeUndefined();
  });
});

describe('stored confidential values are accepted only exactly as sealed', () => {
  it('refuses another spelling of the generation, lenient base64 and values that are not sealed strings, with STATE_INVALID', () => {
    const cipher = cipherFor(bytes(32));
    const [[storedKey, text]] = writeSetOf(cipher, [['k', { count: 3 }]]) as [[string, string]];
    const sealed = JSON.parse(text) as string;
    const body = sealed.slice(2);
    expect(cipher.open(storedKey, sealed)).toBe('{"count":3}');
    const variants = ['01:' + body, '1.0:' + body, '1e0:' + body, ' 1:' + body, '+1:' + body, '1:' + body + '!', '1:' + body + '='];
    for (const v of variants) expect(codeOf(() => cipher.open(storedKey, v)), v.slice(0, 6)).toBe('STATE_INVALID');
    for (const stored of ['42', 'null', '{}', 'true', 'not json']) {
      const overlay = new StateOverlay(committed([[storedKey, stored]]));
      expect(codeOf(() => confidentialStateAccess(overlay, 'analytics', cipher).get('k')), stored).toBe('STATE_INVALID');
    }
  });

  it('forgets a cipher once its generation is no longer committed', () => {
    const keys = new ConsortiumKeys();
    const g = keys.hold(1, bytes(32));
    keys.setCommitted(new Map([[1, g.publicKey]]));
    expect(keys.stateCipher('x')).toBeDefined();
    keys.setCommitted(new Map());
    expect(keys.stateCipher('x')).toBeUndefined();
  });
});
