import { X509Certificate, createPublicKey, type KeyObject } from 'node:crypto';
import { AttestationError } from '../errors.js';
import { fromBase64Strict, isBytes, sha256Hex } from '../internal/bytes.js';
import { decodeUtf8, fromBase64UrlStrict } from './jws.js';

/**
 * The Azure Attestation signing key set, as an instance serves it at
 * `GET <issuer>/certs`: `{"keys":[{"kid","kty":"RSA","x5c":[base64 DER, ...]}]}`.
 * MAA keys carry x5c only (no n/e), so jose's createLocalJWKSet cannot use them
 * (FORMATS.md pitfall 13); the key is the public key of x5c[0].
 *
 * Trust: the key set IS the trust anchor. The caller obtains it from the pinned
 * issuer (never from the token's `jku`) or pins it. The rest of an x5c chain is
 * not evaluated here; the certificate of the matching key must be within its
 * validity at the evaluation time.
 */

export const MAA_MAX_JWKS_BYTES = 1 << 20;
const MAX_KEYS = 256;
const MIN_RSA_BITS = 2048;

/** One usable signing key from the set. */
export interface MaaSigningKey {
  readonly kid: string;
  /** RSA public key. */
  readonly key: KeyObject;
  /** SHA-256 (lowercase hex) of the key's SPKI DER: the result's rootKeyId. */
  readonly keyId: string;
  /** x5c[0] as PEM, when the key came with a certificate. */
  readonly certificatePem?: string;
  readonly subject?: string;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** Raw JWK modulus/exponent when the key came without a certificate. */
  readonly jwk?: { readonly n: string; readonly e: string };
}

function bad(message: string, details?: Record<string, unknown>): AttestationError {
  return new AttestationError('INVALID_ARGUMENT', `MAA key set: ${message}`, details);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !isBytes(value);
}

function parseJsonText(text: string, what: string): unknown {
  if (text.length > MAA_MAX_JWKS_BYTES) throw bad(`${what} is larger than ${MAA_MAX_JWKS_BYTES} bytes`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw bad(`${what} is not JSON`);
  }
}

/** Azure SDK test recording: `{"networkCallRecords":[{"Method","Url","Response":{"BODY"}}]}`. */
export function isAzureSdkRecording(value: unknown): value is { networkCallRecords: unknown[] } {
  return isPlainObject(value) && Array.isArray(value['networkCallRecords']);
}

/**
 * Response bodies of the recording's calls whose method is `method` and whose
 * URL path satisfies `pathTest` (query ignored).
 */
export function recordingBodies(recording: { networkCallRecords: unknown[] }, method: string, pathTest: (path: string) => boolean): string[] {
  const out: string[] = [];
  for (const record of recording.networkCallRecords) {
    if (!isPlainObject(record) || record['Method'] !== method || typeof record['Url'] !== 'string') continue;
    const path = (record['Url'] as string).split('?')[0]!;
    const response = record['Response'];
    if (!pathTest(path) || !isPlainObject(response) || typeof response['BODY'] !== 'string') continue;
    out.push(response['BODY'] as string);
  }
  return out;
}

/**
 * Normalises what the caller passed as `jwks`: the JWKS object, its JSON text
 * or bytes, or an Azure SDK recording whose `GET …/certs` response is the JWKS.
 * Returns the `keys` array. Throws COLLATERAL_MISSING when nothing was passed.
 */
export function maaKeySetKeys(jwks: unknown): readonly unknown[] {
  if (jwks === undefined || jwks === null) {
    throw new AttestationError('COLLATERAL_MISSING', 'no MAA signing key set given (the JSON the issuer serves at <issuer>/certs)');
  }
  let value: unknown = jwks;
  if (isBytes(value)) {
    if (value.length > MAA_MAX_JWKS_BYTES) throw bad(`larger than ${MAA_MAX_JWKS_BYTES} bytes`);
    const text = decodeUtf8(value);
    if (text === undefined) throw bad('bytes are not UTF-8');
    value = text;
  }
  if (typeof value === 'string') value = parseJsonText(value, 'text');
  if (isAzureSdkRecording(value)) {
    const bodies = recordingBodies(value, 'GET', (path) => path.endsWith('/certs'));
    if (bodies.length !== 1) throw bad(`the recording has ${bodies.length} GET …/certs responses, expected exactly 1`);
    value = parseJsonText(bodies[0]!, 'the recorded /certs response');
  }
  if (!isPlainObject(value) || !Array.isArray(value['keys'])) throw bad('not a JWKS object {"keys":[…]}');
  const keys = value['keys'] as unknown[];
  if (keys.length > MAX_KEYS) throw bad(`more than ${MAX_KEYS} keys`);
  return keys;
}

function derToPem(der: Uint8Array): string {
  // Always hand node:crypto a PEM string: given DER, Node tries PEM first and may
  // find the PEM chain embedded in the MAA certificate's SGX-quote extension
  // (FORMATS.md pitfall 3) and return the wrong certificate.
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN CERTIFICATE-----\n${b64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}

function checkRsa(key: KeyObject, kid: string): void {
  if (key.asymmetricKeyType !== 'rsa') throw bad(`key "${kid}" is not an RSA key`, { kid });
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) throw bad(`key "${kid}" has a ${bits}-bit modulus (minimum ${MIN_RSA_BITS})`, { kid });
}

function spkiKeyId(key: KeyObject): string {
  return sha256Hex(new Uint8Array(key.export({ type: 'spki', format: 'der' })));
}

function importKeyEntry(entry: Record<string, unknown>, kid: string): MaaSigningKey {
  if (entry['kty'] !== 'RSA') throw bad(`key "${kid}" has kty ${JSON.stringify(entry['kty'])}, expected "RSA"`, { kid });
  if (entry['use'] !== undefined && entry['use'] !== 'sig') throw bad(`key "${kid}" is not a signing key (use ${JSON.stringify(entry['use'])})`, { kid });
  if (entry['alg'] !== undefined && entry['alg'] !== 'RS256') {
    throw new AttestationError('UNSUPPORTED_ALGORITHM', `MAA key "${kid}" is declared for ${JSON.stringify(entry['alg'])}, not RS256`, { kid });
  }
  const n = entry['n'];
  const e = entry['e'];
  const hasNe = n !== undefined || e !== undefined;
  if (hasNe && (typeof n !== 'string' || typeof e !== 'string' || !fromBase64UrlStrict(n)?.length || !fromBase64UrlStrict(e)?.length)) {
    throw bad(`key "${kid}" has malformed n/e`, { kid });
  }
  const x5c = entry['x5c'];
  if (x5c !== undefined) {
    if (!Array.isArray(x5c) || x5c.length === 0 || typeof x5c[0] !== 'string') throw bad(`key "${kid}" has a malformed x5c`, { kid });
    const der = fromBase64Strict(x5c[0] as string);
    if (der === undefined || der.length === 0) throw bad(`key "${kid}": x5c[0] is not base64`, { kid });
    const certificatePem = derToPem(der);
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(certificatePem);
    } catch (err) {
      throw new AttestationError('INVALID_ARGUMENT', `MAA key set: key "${kid}": x5c[0] is not an X.509 certificate`, { kid }, { cause: err });
    }
    if (!Buffer.from(cert.raw).equals(Buffer.from(der))) throw bad(`key "${kid}": x5c[0] did not parse as itself`, { kid });
    const key = cert.publicKey;
    checkRsa(key, kid);
    if (hasNe) {
      const jwk = key.export({ format: 'jwk' });
      if (jwk.n !== n || jwk.e !== e) throw bad(`key "${kid}": n/e differ from the x5c certificate's key`, { kid });
    }
    const notBefore = new Date(cert.validFrom);
    const notAfter = new Date(cert.validTo);
    if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) throw bad(`key "${kid}": unreadable certificate validity`, { kid });
    return { kid, key, keyId: spkiKeyId(key), certificatePem, subject: cert.subject.replace(/\n/g, ', '), notBefore, notAfter };
  }
  if (!hasNe) throw bad(`key "${kid}" has neither x5c nor n/e`, { kid });
  let key: KeyObject;
  try {
    key = createPublicKey({ key: { kty: 'RSA', n: n as string, e: e as string }, format: 'jwk' });
  } catch (err) {
    throw new AttestationError('INVALID_ARGUMENT', `MAA key set: key "${kid}" is not a valid RSA key`, { kid }, { cause: err });
  }
  checkRsa(key, kid);
  return { kid, key, keyId: spkiKeyId(key), jwk: { n: n as string, e: e as string } };
}

/**
 * The key with this `kid` from the key set. Throws UNTRUSTED_ROOT when the set
 * has no such key (the token was not signed by any key the caller trusts),
 * INVALID_ARGUMENT for a malformed set or a kid given twice.
 */
export function findMaaSigningKey(jwks: unknown, kid: string): MaaSigningKey {
  const keys = maaKeySetKeys(jwks);
  const matches = keys.filter((k) => isPlainObject(k) && k['kid'] === kid) as Record<string, unknown>[];
  if (matches.length === 0) {
    throw new AttestationError(
      'UNTRUSTED_ROOT',
      `the MAA key set has no key with kid "${kid.slice(0, 128)}": the token is not signed by a key of the given issuer's key set`,
      { kid: kid.slice(0, 128), keysInSet: keys.filter(isPlainObject).map((k) => (typeof k['kid'] === 'string' ? k['kid'] : null)) },
    );
  }
  if (matches.length > 1) throw bad(`kid "${kid.slice(0, 128)}" appears ${matches.length} times`);
  return importKeyEntry(matches[0]!, kid);
}
