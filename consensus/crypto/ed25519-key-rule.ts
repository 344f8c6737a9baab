import { isHexOfLength } from '../encoding/hex.js';

/**
 * The one ed25519 rule every Cloister node applies, wherever a key enters the
 * system or a signature is checked (transactions, votes, proposals, commit
 * certificates, genesis keys).
 *
 * A public key A (32 bytes) is acceptable only if
 *   1. it is a canonical encoding: its 255-bit y is below p = 2^255 - 19, and
 *      the sign bit is clear when x = 0 (that is, when y = 1 or y = p - 1);
 *   2. it is not of small order: [8]A is not the identity, i.e. A is none of
 *      the eight torsion points (the identity 0100…00 and the all-zero key,
 *      Cloister's anonymous caller, are two of them). For a small-order key
 *      anyone can make signatures that OpenSSL accepts: S = 0 and R = -[k]A,
 *      which takes a few tries over the message at most.
 * A signature (R, S) verifies only if, in addition,
 *   3. R is not one of the eight small-order points (no honest signer ever
 *      makes one; refused as libsodium does);
 *   4. S < L, the group order (OpenSSL refuses larger S, so no malleated copy
 *      (R, S + L) of a valid signature verifies);
 *   5. A decodes to a curve point and [S]B = R + [k]A with
 *      k = SHA-512(R ‖ A ‖ M) mod L, the cofactorless equation: OpenSSL
 *      recomputes [S]B - [k]A and compares its canonical encoding with R byte
 *      for byte, so a non-canonical R never verifies.
 *
 * Rules 1-3 are decided here on the bytes, with no point arithmetic: a curve
 * point has exactly one canonical encoding, so once rule 1 holds, "of small
 * order" is "one of the eight canonical encodings of the torsion points".
 * This costs about a microsecond, so a transaction from a new sender costs no
 * point decompression (which would cost more than the verification itself),
 * and the rule needs no code outside the measured enclave program. The tests
 * derive the eight encodings and check every verdict against @noble/curves'
 * strict decoding and isSmallOrder().
 * A key that is not a curve point passes rules 1-2 but no signature ever
 * verifies for it (rule 5). Rules 4-5 are OpenSSL's (node:crypto).
 *
 * A key with a torsion component that is not of small order ("mixed order")
 * is accepted: no key made from a private seed is one, nobody without its
 * discrete logarithm can sign for it, and the cofactorless equation gives
 * every node the same verdict. On the 12 vectors of "Taming the many EdDSAs"
 * this rule accepts exactly what libsodium and ed25519-dalek's verify_strict
 * accept (vector 3 only); the tests pin every verdict.
 *
 * Two ed25519 verifications in the program do not go through this rule, by
 * design; neither decides what the chain accepts:
 *  - attestation tokens (attestation/token) are verified by jose (WebCrypto,
 *    OpenSSL). attestation/ imports nothing of ours, and a token counts only
 *    with its evidence, whose report_data must bind the signing key: a key an
 *    enclave made from a random seed, never a small-order one.
 *  - libp2p's Noise handshake verifies the peers' identity keys (node ids)
 *    with node:crypto. Only genesis node ids may connect, and a connection
 *    counts only once the peer's enclave evidence binds that node id and its
 *    genesis vote key (which this rule checks).
 */

/** Why 32 bytes are not an acceptable ed25519 public key (rules 1-2 above). */
export type Ed25519KeyProblem = 'malformed' | 'non-canonical' | 'small-order';

/**
 * The canonical encodings of the eight points of small order (lowercase hex):
 * the multiples of an order-8 point, as the tests recompute them.
 */
export const SMALL_ORDER_ED25519_POINTS: ReadonlySet<string> = new Set([
  '0100000000000000000000000000000000000000000000000000000000000000', // the identity
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // order 2: (0, -1)
  '0000000000000000000000000000000000000000000000000000000000000000', // order 4: the all-zero key
  '0000000000000000000000000000000000000000000000000000000000000080', // order 4
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa', // order 8
]);

const P = 2n ** 255n - 19n;
const Y_MASK = 2n ** 255n - 1n;

/** Classifies a public key by rules 1-2; undefined when it is acceptable. */
export function classifyEd25519PublicKey(publicKeyHex: string): Ed25519KeyProblem | undefined {
  if (!isHexOfLength(publicKeyHex, 32)) return 'malformed';
  const encoded = BigInt('0x' + Buffer.from(publicKeyHex, 'hex').reverse().toString('hex'));
  const y = encoded & Y_MASK;
  const signBit = encoded >> 255n;
  if (y >= P) return 'non-canonical';
  // x = 0 exactly when y = ±1; its encoding has no sign to give.
  if (signBit === 1n && (y === 1n || y === P - 1n)) return 'non-canonical';
  return SMALL_ORDER_ED25519_POINTS.has(publicKeyHex) ? 'small-order' : undefined;
}

const PROBLEM_TEXT: Record<Ed25519KeyProblem, string> = {
  malformed: 'it is not 32 bytes of lowercase hex',
  'non-canonical': 'it is a non-canonical point encoding (y >= 2^255 - 19, or x = 0 with the sign bit set)',
  'small-order': 'it is a point of small order, for which signatures can be made without a private key',
};

/** One clause for an error message, e.g. "it is a point of small order, …". */
export function describeEd25519KeyProblem(problem: Ed25519KeyProblem): string {
  return PROBLEM_TEXT[problem];
}
