import { generateKeyPairSync } from 'node:crypto';
import { guarded } from '../errors.js';
import { sha256Hex } from '../internal/bytes.js';
import { parsePinnedEcKey } from '../internal/keys.js';

/**
 * The virtual vendor root: an ECDSA P-384 key pair generated locally by the
 * launcher. The public key (SPKI PEM) is declared as a trusted virtual root; the
 * private key (PKCS#8 PEM) stays with the launcher and never appears in evidence.
 */

const CURVE = 'secp384r1';

export interface VirtualRoot {
  /** SPKI PEM; goes into the consortium's trusted virtual roots. */
  readonly publicKeyPem: string;
  /** PKCS#8 PEM; stays with the launcher. */
  readonly privateKeyPem: string;
  /** SHA-256 hex of the public key's SPKI DER (= AttestationResult.rootKeyId). */
  readonly keyId: string;
}

/** Generates a fresh virtual vendor root (ECDSA P-384). */
export function generateVirtualRoot(): VirtualRoot {
  return guarded('generateVirtualRoot', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const keyId = sha256Hex(publicKey.export({ type: 'spki', format: 'der' }));
    return { publicKeyPem, privateKeyPem, keyId };
  });
}

/** SHA-256 hex of the SPKI DER of a virtual root public key PEM (INVALID_ARGUMENT if not a P-384 SPKI PEM). */
export function virtualRootKeyId(publicKeyPem: string): string {
  return guarded('virtualRootKeyId', () => parsePinnedEcKey(publicKeyPem, CURVE, 'virtual root').keyId);
}

