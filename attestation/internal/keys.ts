import { createPublicKey, type KeyObject } from 'node:crypto';
import { AttestationError } from '../errors.js';
import { sha256Hex } from './bytes.js';

export interface PinnedKey {
  /** SPKI DER of the key: the identity roots are pinned by. */
  readonly spkiDer: Uint8Array;
  /** SHA-256 hex of spkiDer. */
  readonly keyId: string;
  readonly key: KeyObject;
}

const SPKI_PEM_RE = /^\s*-----BEGIN PUBLIC KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PUBLIC KEY-----\s*$/;

/**
 * Parses an SPKI PEM ("BEGIN PUBLIC KEY") of an EC key on `curve` (node name,
 * e.g. 'secp384r1'). Anything else (certificates, private keys, other curves)
 * is INVALID_ARGUMENT: a trust anchor must be exactly a public key.
 */
export function parsePinnedEcKey(pem: unknown, curve: string, what: string): PinnedKey {
  if (typeof pem !== 'string' || pem.length > 16_384 || !SPKI_PEM_RE.test(pem)) {
    throw new AttestationError('INVALID_ARGUMENT', `${what} is not an SPKI public key PEM`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new AttestationError('INVALID_ARGUMENT', `${what} cannot be parsed as a public key`, undefined, { cause: err });
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== curve) {
    throw new AttestationError('INVALID_ARGUMENT', `${what} is not an EC ${curve} key`);
  }
  const spkiDer = new Uint8Array(key.export({ type: 'spki', format: 'der' }));
  return { spkiDer, keyId: sha256Hex(spkiDer), key };
}
