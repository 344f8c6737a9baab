import { createHash, createPublicKey, verify } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import {
  ChainError,
  DEFAULT_CONSENSUS_PARAMS,
  Ed25519Signer,
  SMALL_ORDER_ED25519_POINTS,
  checkTxStateless,
  classifyEd25519PublicKey,
  generateEd25519KeyPair,
  parseGenesis,
  parseSignedTx,
  publicKeyFromPrivate,
  signingMessage,
  txBodyOf,
  verifyEd25519,
  type SignedTx,
} from '../../../consensus/index.js';
import { ANONYMOUS_CALLER } from '../../../contracts/index.js';
import { EDGE_CASE_VECTORS, RFC8032_VECTORS, type EdgeCaseVector } from './ed25519-vectors.js';

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const IDENTITY = '01' + '00'.repeat(31);
const ZERO_S = '00'.repeat(32);

/** node:crypto alone, without Cloister's rule: what the issue reproduced. */
function opensslVerifies(publicKeyHex: string, message: Uint8Array, signatureHex: string): boolean {
  try {
    const key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from(publicKeyHex, 'hex')]), format: 'der', type: 'spki' });
    return verify(null, message, key, Buffer.from(signatureHex, 'hex'));
  } catch {
    return false;
  }
}

const bytes = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'));

/**
 * Whether this runtime's node:crypto alone takes a signature under a small-order
 * key: Node 20 and 22 do (the vectors' `openssl` column), Node 24 refuses such
 * keys, small-order R and non-canonical keys itself. Cloister's verdict must
 * not depend on it: its rule refuses all of them before node:crypto is asked.
 */
const OPENSSL_TAKES_SMALL_ORDER = opensslVerifies(IDENTITY, new Uint8Array([0]), IDENTITY + ZERO_S);
/** The reasons a strict node:crypto (Node 24) decides as Cloister does, where a lenient one accepts. */
const REFUSED_BY_STRICT_OPENSSL = new Set(['A is of small order', 'R is of small order', 'A is a non-canonical encoding']);
const littleEndian = (hex: string): bigint => BigInt('0x' + Buffer.from(hex, 'hex').reverse().toString('hex'));
const encodeLittleEndian = (n: bigint): string => Buffer.from(n.toString(16).padStart(64, '0'), 'hex').reverse().toString('hex');
/** A 32-byte point encoding of y (< 2^255) with the sign bit of x. */
const encodePoint = (y: bigint, xOdd: boolean): string => encodeLittleEndian(y | (xOdd ? 1n << 255n : 0n));

function decodes(hex: string, zip215: boolean): boolean {
  try {
    ed25519.Point.fromHex(hex, zip215);
    return true;
  } catch {
    return false;
  }
}

function codeOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ChainError);
    return { code: (err as ChainError).code, message: (err as ChainError).message };
  }
  throw new Error('expected a ChainError');
}

describe('RFC 8032 test vectors', () => {
  it.each(RFC8032_VECTORS)('$name: our keys and signatures are the RFC ones and verify', (v) => {
    expect(publicKeyFromPrivate(v.seed)).toBe(v.publicKey);
    const signer = new Ed25519Signer(v.seed);
    expect(signer.sign(bytes(v.message))).toBe(v.signature);
    expect(classifyEd25519PublicKey(v.publicKey)).toBeUndefined();
    expect(verifyEd25519(v.publicKey, bytes(v.message), v.signature)).toBe(true);
    // Another message, another key, a flipped bit of R or of S: refused.
    expect(verifyEd25519(v.publicKey, bytes(v.message + '00'), v.signature)).toBe(false);
    expect(verifyEd25519(RFC8032_VECTORS.find((o) => o !== v)!.publicKey, bytes(v.message), v.signature)).toBe(false);
    for (const at of [0, 64]) {
      const flipped = v.signature.slice(0, at) + (v.signature[at] === '0' ? '1' : '0') + v.signature.slice(at + 1);
      expect(verifyEd25519(v.publicKey, bytes(v.message), flipped)).toBe(false);
    }
  });

  it.each(RFC8032_VECTORS)('$name: the malleated copy (R, S + L) is refused (S < L)', (v) => {
    const s = littleEndian(v.signature.slice(64));
    expect(s).toBeLessThan(L);
    const malleated = v.signature.slice(0, 64) + encodeLittleEndian(s + L);
    expect(opensslVerifies(v.publicKey, bytes(v.message), malleated)).toBe(false);
    expect(verifyEd25519(v.publicKey, bytes(v.message), malleated)).toBe(false);
  });
});

describe('the 12 "Taming the many EdDSAs" edge-case vectors', () => {
  /** Checks that `v.why` is really the reason: the property it names holds of the vector. */
  function expectReason(v: EdgeCaseVector): void {
    const r = v.signature.slice(0, 64);
    const s = littleEndian(v.signature.slice(64));
    const keyProblem = classifyEd25519PublicKey(v.publicKey);
    switch (v.why) {
      case 'A is of small order':
        expect(keyProblem).toBe('small-order');
        break;
      case 'A is a non-canonical encoding':
        expect(keyProblem).toBe('non-canonical');
        break;
      case 'R is of small order':
        expect(keyProblem).toBeUndefined();
        expect(SMALL_ORDER_ED25519_POINTS.has(r)).toBe(true);
        break;
      case 'S >= L':
        expect(keyProblem).toBeUndefined();
        expect(s >= L).toBe(true);
        break;
      case 'R is a non-canonical encoding':
        expect(keyProblem).toBeUndefined();
        expect(decodes(r, false)).toBe(false);
        expect(decodes(r, true)).toBe(true);
        break;
      case 'the cofactorless equation fails (only cofactored verification accepts it)':
        expect(keyProblem).toBeUndefined();
        expect(decodes(r, false)).toBe(true);
        expect(s < L).toBe(true);
        // noble with zip215 verifies with the cofactored equation: [8][S]B = [8]R + [8][k]A.
        expect(ed25519.verify(bytes(v.signature), bytes(v.message), bytes(v.publicKey), { zip215: true })).toBe(true);
        break;
      case 'accepted: A and R mixed, and the cofactorless equation holds':
        expect(keyProblem).toBeUndefined();
        expect(ed25519.Point.fromHex(v.publicKey).isTorsionFree()).toBe(false);
        break;
    }
  }

  const labelled = EDGE_CASE_VECTORS.map((v) => ({ ...v, label: String(v.index) }));
  it.each(labelled)('vector $label: OpenSSL alone says $openssl (Node 20, 22), Cloister says $cloister ($why)', (v) => {
    const message = bytes(v.message);
    const openssl = OPENSSL_TAKES_SMALL_ORDER ? v.openssl : v.openssl && !REFUSED_BY_STRICT_OPENSSL.has(v.why);
    expect(opensslVerifies(v.publicKey, message, v.signature)).toBe(openssl);
    expect(verifyEd25519(v.publicKey, message, v.signature)).toBe(v.cloister);
    expectReason(v);
  });

  it('accepts exactly what libsodium and ed25519-dalek verify_strict accept: vector 3 only', () => {
    expect(EDGE_CASE_VECTORS.filter((v) => verifyEd25519(v.publicKey, bytes(v.message), v.signature)).map((v) => v.index)).toEqual([3]);
  });
});

describe('the public key rule', () => {
  const torsion = ed25519.Point.fromHex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05');
  const multiplesOfTorsion = (): string[] => {
    const out: string[] = [];
    for (let k = 0, point = ed25519.Point.ZERO; k < 8; k++, point = point.add(torsion)) out.push(point.toHex());
    return out;
  };

  /** What strict RFC 8032 decoding and isSmallOrder() (@noble/curves) say of a curve point's encoding. */
  function nobleVerdict(key: string): string | undefined {
    if (!decodes(key, false)) return 'non-canonical';
    return ed25519.Point.fromHex(key).isSmallOrder() ? 'small-order' : undefined;
  }

  it('refuses the eight points of small order: its list is exactly the multiples of an order-8 point', () => {
    const multiples = new Set(multiplesOfTorsion());
    expect(multiples.size).toBe(8);
    expect(new Set(SMALL_ORDER_ED25519_POINTS)).toEqual(multiples);
    for (const key of multiples) {
      expect(ed25519.Point.fromHex(key).isSmallOrder()).toBe(true);
      expect(classifyEd25519PublicKey(key)).toBe('small-order');
    }
    expect(SMALL_ORDER_ED25519_POINTS.has(IDENTITY)).toBe(true);
    expect(SMALL_ORDER_ED25519_POINTS.has(ANONYMOUS_CALLER)).toBe(true);
  });

  it('refuses every encoding with y >= p, and x = 0 with the sign bit set, as non-canonical', () => {
    const nonCanonical: string[] = [];
    for (let y = P; y < 2n ** 255n; y++) for (const xOdd of [false, true]) nonCanonical.push(encodePoint(y, xOdd));
    // x = 0 only for y = 1 (the identity) and y = p - 1 (the point of order 2).
    nonCanonical.push(encodePoint(1n, true), encodePoint(P - 1n, true));
    expect(new Set(nonCanonical).size).toBe(40);
    for (const key of nonCanonical) expect(classifyEd25519PublicKey(key)).toBe('non-canonical');
    // Among them the six other encodings of small-order points (y = p is y = 0, y = p + 1 is y = 1), and of larger points.
    const points = nonCanonical.filter((key) => decodes(key, true));
    expect(points.filter((key) => ed25519.Point.fromHex(key, true).isSmallOrder())).toHaveLength(6);
    expect(points.filter((key) => !ed25519.Point.fromHex(key, true).isSmallOrder()).length).toBeGreaterThan(0);
  });

  it("agrees with @noble/curves' strict decoding and isSmallOrder() on every curve point tried", () => {
    const keys = [...multiplesOfTorsion()];
    for (let y = P; y < 2n ** 255n; y++) keys.push(encodePoint(y, false), encodePoint(y, true));
    keys.push(encodePoint(1n, true), encodePoint(P - 1n, true));
    for (let i = 0; i < 40; i++) keys.push(generateEd25519KeyPair().publicKey);
    // Mixed order: a key made from a seed plus each torsion point.
    const base = ed25519.Point.fromHex(generateEd25519KeyPair().publicKey);
    for (const t of multiplesOfTorsion()) keys.push(base.add(ed25519.Point.fromHex(t)).toHex());
    // Arbitrary bytes (deterministic), about half of them curve points.
    for (let i = 0; i < 400; i++) keys.push(createHash('sha256').update(`key ${i}`).digest('hex'));
    let compared = 0;
    for (const key of keys) {
      if (!decodes(key, true)) continue;
      expect([key, classifyEd25519PublicKey(key)]).toEqual([key, nobleVerdict(key)]);
      compared++;
    }
    expect(compared).toBeGreaterThan(250);
  });

  it('lets a key that is not a curve point through the key rule, but no signature verifies for it', () => {
    let offCurve: string | undefined;
    for (let i = 0; !offCurve; i++) {
      const key = createHash('sha256').update(`off ${i}`).digest('hex');
      if (!decodes(key, true)) offCurve = key;
    }
    expect(classifyEd25519PublicKey(offCurve)).toBeUndefined();
    const signature = new Ed25519Signer(RFC8032_VECTORS[0]!.seed).sign(bytes('00'));
    expect(verifyEd25519(offCurve, bytes('00'), signature)).toBe(false);
  });

  it('refuses what is not 32 bytes of lowercase hex', () => {
    for (const bad of ['', 'ab'.repeat(31), 'AB'.repeat(32), 'zz'.repeat(32), 'ab'.repeat(33), undefined as unknown as string]) {
      expect(classifyEd25519PublicKey(bad)).toBe('malformed');
      expect(verifyEd25519(bad, bytes('00'), '00'.repeat(64))).toBe(false);
    }
  });
});

describe('keys that sign without a private key (the issue)', () => {
  const body = (from: string, nonce = 0) => ({
    chainId: 'test-chain',
    from,
    nonce,
    contract: 'token',
    method: 'transfer',
    args: ['ab'.repeat(32), 1_000_000],
    gasLimit: 100_000,
  });

  it('a transaction "from" 0100…00 with R = identity and S = 0 verifies under OpenSSL alone (Node 20, 22) and is refused by every check', () => {
    const tx: SignedTx = { ...body(IDENTITY), signature: IDENTITY + ZERO_S };
    const message = signingMessage('tx', txBodyOf(tx));
    expect(opensslVerifies(IDENTITY, message, tx.signature)).toBe(OPENSSL_TAKES_SMALL_ORDER);
    expect(verifyEd25519(IDENTITY, message, tx.signature)).toBe(false);
    for (const check of [() => parseSignedTx(tx), () => checkTxStateless(tx, 'test-chain')]) {
      const { code, message: why } = codeOf(check);
      expect(code).toBe('TX_MALFORMED');
      expect(why).toMatch(/from is not an acceptable ed25519 public key: .*small order/);
    }
  });

  it('the all-zero key, the anonymous caller, can sign a transaction under OpenSSL alone (Node 20, 22), never under the rule', () => {
    expect(ANONYMOUS_CALLER).toBe('00'.repeat(32));
    // The zero key is a point A of order 4: S = 0 with R = -[k]A verifies (the cofactorless equation
    // [S]B = R + [k]A holds), and R is one of O, A, 2A, 3A.
    const a = ed25519.Point.fromHex(ANONYMOUS_CALLER);
    const candidates = [ed25519.Point.ZERO, a, a.add(a), a.add(a).add(a)];
    const forgeries: SignedTx[] = [];
    for (let nonce = 0; nonce < 16; nonce++) {
      const unsigned = body(ANONYMOUS_CALLER, nonce);
      const message = signingMessage('tx', unsigned);
      // k = SHA-512(R || A || M): a candidate R forges when R + [k]A = O. Found with noble's group
      // arithmetic, so the forgeries do not depend on what node:crypto accepts.
      const k = (r: typeof a): bigint => ed25519.Point.Fn.create(littleEndian(createHash('sha512').update(r.toBytes()).update(a.toBytes()).update(message).digest('hex')));
      const r = candidates.find((c) => c.add(a.multiplyUnsafe(k(c))).equals(ed25519.Point.ZERO));
      if (!r) continue;
      const forged = { ...unsigned, signature: r.toHex() + ZERO_S };
      expect(opensslVerifies(ANONYMOUS_CALLER, message, forged.signature)).toBe(OPENSSL_TAKES_SMALL_ORDER);
      forgeries.push(forged);
    }
    expect(forgeries.length).toBeGreaterThan(0);
    for (const forged of forgeries) {
      expect(verifyEd25519(ANONYMOUS_CALLER, signingMessage('tx', txBodyOf(forged)), forged.signature)).toBe(false);
      expect(codeOf(() => checkTxStateless(forged, 'test-chain')).code).toBe('TX_MALFORMED');
    }
  });

  it('a small-order R is refused even under an acceptable key', () => {
    const { publicKey } = generateEd25519KeyPair();
    for (const r of SMALL_ORDER_ED25519_POINTS) expect(verifyEd25519(publicKey, bytes('00'), r + ZERO_S)).toBe(false);
  });
});

describe('genesis keys', () => {
  const good = () => generateEd25519KeyPair().publicKey;
  const genesis = (memberKey: string, voteKey: string) => ({
    chainId: 'test-chain',
    time: 0,
    members: [{ id: 'hospital-a', publicKey: memberKey }],
    validators: [{ nodeId: 'node-1', voteKey }],
    contracts: [],
    enclave: { measurements: {}, virtualRoots: [] },
    policy: {},
    consensus: { ...DEFAULT_CONSENSUS_PARAMS },
  });

  it('accepts keys made from a private seed', () => {
    expect(parseGenesis(genesis(good(), good())).members).toHaveLength(1);
  });

  it.each([
    ['a member key of small order (the anonymous caller)', () => genesis(ANONYMOUS_CALLER, good()), /member "hospital-a" publicKey 0{64} .*small order/],
    ['a vote key of small order (the identity)', () => genesis(good(), IDENTITY), /validator "node-1" voteKey 01(00){31} .*small order/],
    ['a non-canonical vote key', () => genesis(good(), 'ed' + 'ff'.repeat(30) + '7f'), /validator "node-1" voteKey .*non-canonical/],
  ])('refuses %s', (_, make, why) => {
    const { code, message } = codeOf(() => parseGenesis(make()));
    expect(code).toBe('ENCODING_INVALID');
    expect(message).toMatch(why);
  });
});
