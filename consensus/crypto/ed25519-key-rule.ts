import { ED25519_TORSION_SUBGROUP, ed25519 } from '@noble/curves/ed25519.js';
import { isHexOfLength } from '../encoding/hex.js';

/**
 * The one ed25519 rule every Cloister node applies, wherever a key enters the
 * system or a signature is checked (transactions, votes, proposals, commit
 * certificates, genesis keys).
 *
 * A public key A (32 bytes) is acceptable only if
 *   1. it is a canonical encoding: its 255-bit y is below p = 2^255 - 19, and
 *      the sign bit is clear when x = 0 (RFC 8032 5.1.3 decoding, strict);
 *   2. it decodes to a point of the curve;
 *   3. the point is not of small order: [8]A is not the identity, i.e. A is
 *      none of the eight torsion points (the identity 0100…00 and the all-zero
 *      key, Cloister's anonymous caller, are two of them). For a small-order key
 *      anyone can make signatures that verify: with S = 0 and R = -[k]A, which
 *      takes at most a few tries over k.
 * A signature (R, S) verifies only if, in addition,
 *   4. S < L, the group order (OpenSSL refuses larger S, so no malleated copy
 *      (R, S + L) of a valid signature verifies);
 *   5. R is not one of the eight small-order points (no honest signer ever
 *      makes one; refused as libsodium does);
 *   6. [S]B = R + [k]A with k = SHA-512(R ‖ A ‖ M) mod L, the cofactorless
 *      equation: OpenSSL recomputes [S]B - [k]A and compares its canonical
 *      encoding with R byte for byte, so a non-canonical R never verifies.
 *
 * Rules 1-3 are decided here with @noble/curves (strict decoding,
 * isSmallOrder), once per key: `ed25519.ts` caches the verdict with the key
 * object. Rules 4 and 6 are OpenSSL's (node:crypto), rule 5 a comparison with
 * the eight canonical encodings below (a non-canonical R fails rule 6 anyway).
 *
 * A key with a torsion component that is not of small order ("mixed order")
 * is accepted: no key made from a private seed is one, nobody without its
 * discrete logarithm can sign for it, and the cofactorless equation gives
 * every node the same verdict. On the 12 vectors of "Taming the many EdDSAs"
 * this rule accepts exactly what libsodium and ed25519-dalek's verify_strict
 * accept (vector 3 only); the tests pin every verdict.
 */

/** Why 32 bytes are not an acceptable ed25519 public key (rules 1-3 above). */
export type Ed25519KeyProblem = 'malformed' | 'non-canonical' | 'not-on-curve' | 'small-order';

/** The canonical encodings of the eight points of small order (lowercase hex). */
export const SMALL_ORDER_ED25519_POINTS: ReadonlySet<string> = new Set(ED25519_TORSION_SUBGROUP);

/**
 * Classifies a public key by rules 1-3; undefined when it is acceptable.
 * Costs a point decompression (about as much as a verification): call it once
 * per key and keep the verdict, as `ed25519PublicKeyProblem` does.
 */
export function classifyEd25519PublicKey(publicKeyHex: string): Ed25519KeyProblem | undefined {
  if (!isHexOfLength(publicKeyHex, 32)) return 'malformed';
  const bytes = Buffer.from(publicKeyHex, 'hex');
  let point;
  try {
    point = ed25519.Point.fromBytes(bytes, false);
  } catch {
    // ZIP-215 decoding accepts y >= p and x = 0 with the sign bit: if it succeeds, only the encoding was wrong.
    return decodesLeniently(bytes) ? 'non-canonical' : 'not-on-curve';
  }
  return point.isSmallOrder() ? 'small-order' : undefined;
}

function decodesLeniently(bytes: Uint8Array): boolean {
  try {
    ed25519.Point.fromBytes(bytes, true);
    return true;
  } catch {
    return false;
  }
}

const PROBLEM_TEXT: Record<Ed25519KeyProblem, string> = {
  malformed: 'it is not 32 bytes of lowercase hex',
  'non-canonical': 'it is a non-canonical point encoding (y >= 2^255 - 19, or x = 0 with the sign bit set)',
  'not-on-curve': 'it is not a point of the curve',
  'small-order': 'it is a point of small order, for which signatures can be made without a private key',
};

/** One clause for an error message, e.g. "it is a point of small order, …". */
export function describeEd25519KeyProblem(problem: Ed25519KeyProblem): string {
  return PROBLEM_TEXT[problem];
}
