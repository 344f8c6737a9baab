import { constants as cryptoConstants, verify as nodeVerify } from 'node:crypto';
import { compactVerify, errors as joseErrors, importJWK, importX509 } from 'jose';
import { AttestationError, guarded } from '../errors.js';
import { bytesEqual, deepFreeze, isBytes, sha256Hex } from '../internal/bytes.js';
import type { AttestationResult } from '../result.js';
import { isoSeconds, mapMaaClaims, type MappedMaaClaims, type MaaTokenSummary } from './claims.js';
import { findMaaSigningKey, isAzureSdkRecording, recordingBodies, type MaaSigningKey } from './jwks.js';
import { decodeUtf8, parseCompactJws, type CompactJws } from './jws.js';

/**
 * Azure Attestation (MAA) token verification.
 *
 * verifyMaaToken(token, { now, jwks, expectedIssuer? }):
 *  1. token: the compact JWT (string or bytes; surrounding whitespace ignored),
 *     or a JSON wrapper holding it: the attest response `{"token":"…"}` or an
 *     Azure SDK test recording (the token of its single POST …/attest/… call).
 *  2. header: alg must be RS256 (anything else, including "none":
 *     UNSUPPORTED_ALGORITHM); `kid` required; `crit` refused; `jku`/`x5u`/`jwk`/
 *     `x5c` in the header are IGNORED — the key comes only from `jwks`.
 *  3. key: the entry of `jwks` whose kid equals the header's (none:
 *     UNTRUSTED_ROOT; no jwks at all: COLLATERAL_MISSING); its x5c[0]
 *     certificate must be valid at `now`.
 *  4. signature: RS256 over the exact token text (jose; any changed byte:
 *     SIGNATURE_INVALID or EVIDENCE_MALFORMED).
 *  5. times at `now`: exp > now (else EVIDENCE_EXPIRED), nbf <= now and
 *     iat <= now (else EVIDENCE_NOT_YET_VALID), with optional clock skew.
 *  6. issuer: equal to expectedIssuer when given (trailing "/" ignored), else
 *     UNTRUSTED_ROOT.
 *  7. claims → AttestationResult (see claims.ts), plus `maa` details.
 *
 * Result fields specific to MAA: signingKey 'maa'; rootKeyId = SHA-256 of the
 * signing key's SPKI DER; evidenceDigest = SHA-256 of the compact token text
 * (ASCII, without any wrapper or whitespace, so the same token has one digest
 * however it was delivered); issuedAt = iat; validity = [max(nbf|iat, cert
 * notBefore), min(exp, cert notAfter)].
 *
 * Not checked here (documented gaps): the x5c chain beyond x5c[0] (the key set
 * is the caller's trust anchor), the SGX quote of the MAA enclave embedded in
 * self-signed MAA signing certificates, and the SGX collateral hashes.
 */

export interface VerifyMaaOptions {
  /** Evaluation time. */
  readonly now: Date;
  /**
   * The issuer's signing key set, as served at `<issuer>/certs`: the JWKS object,
   * its JSON text or bytes (or an Azure SDK recording containing that response).
   */
  readonly jwks: unknown;
  /** The MAA instance the caller trusts, e.g. "https://sharedwus.wus.attest.azure.net". Recommended. */
  readonly expectedIssuer?: string;
  /** Tolerance for nbf/iat slightly after `now`, seconds. Default 0. */
  readonly maxClockSkewSeconds?: number;
}

export interface MaaAttestationResult extends AttestationResult {
  readonly platform: 'maa-sgx' | 'maa-sev-snp';
  readonly maa: MaaTokenSummary;
}

export const MAA_MAX_TOKEN_BYTES = 1 << 20;

interface Prepared {
  readonly jws: CompactJws;
  readonly key: MaaSigningKey;
  readonly claims: MappedMaaClaims;
  readonly now: Date;
  readonly skewMs: number;
  readonly expectedIssuer?: string;
}

function malformed(message: string): AttestationError {
  return new AttestationError('EVIDENCE_MALFORMED', `MAA token: ${message}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The compact token text from whatever the caller passed (see verifyMaaToken, step 1). */
export function extractMaaToken(token: string | Uint8Array): string {
  return guarded('extractMaaToken', () => {
    let text: string | undefined;
    if (typeof token === 'string') text = token;
    else if (isBytes(token)) {
      if (token.length > MAA_MAX_TOKEN_BYTES) throw malformed(`larger than ${MAA_MAX_TOKEN_BYTES} bytes`);
      text = decodeUtf8(token);
      if (text === undefined) throw malformed('not UTF-8 text');
    } else throw malformed('token must be a string or bytes');
    if (text.length > MAA_MAX_TOKEN_BYTES) throw malformed(`larger than ${MAA_MAX_TOKEN_BYTES} bytes`);
    text = text.trim();
    if (!text.startsWith('{')) return text;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw malformed('starts with "{" but is not JSON');
    }
    if (isAzureSdkRecording(json)) {
      const bodies = recordingBodies(json, 'POST', (path) => /\/attest\/[^/]+$/.test(path));
      if (bodies.length !== 1) throw malformed(`the recording has ${bodies.length} POST …/attest/… responses, expected exactly 1`);
      try {
        json = JSON.parse(bodies[0]!);
      } catch {
        throw malformed('the recorded attest response is not JSON');
      }
    }
    if (isPlainObject(json) && typeof json['token'] === 'string') return json['token'].trim();
    throw malformed('JSON input holds no "token"');
  });
}

function checkOptions(options: VerifyMaaOptions): { now: Date; skewMs: number; expectedIssuer?: string } {
  if (options === null || typeof options !== 'object') throw new AttestationError('INVALID_ARGUMENT', 'options must be an object');
  const now = options.now;
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new AttestationError('INVALID_ARGUMENT', 'now must be a valid Date');
  const skew = options.maxClockSkewSeconds ?? 0;
  if (!Number.isSafeInteger(skew) || skew < 0) throw new AttestationError('INVALID_ARGUMENT', 'maxClockSkewSeconds must be a non-negative integer');
  const expectedIssuer = options.expectedIssuer;
  if (expectedIssuer !== undefined && (typeof expectedIssuer !== 'string' || expectedIssuer.length === 0)) {
    throw new AttestationError('INVALID_ARGUMENT', 'expectedIssuer must be a non-empty string');
  }
  return { now, skewMs: skew * 1000, ...(expectedIssuer === undefined ? {} : { expectedIssuer }) };
}

function prepare(token: string | Uint8Array, options: VerifyMaaOptions): Prepared {
  const { now, skewMs, expectedIssuer } = checkOptions(options);
  const jws = parseCompactJws(extractMaaToken(token));
  const { header } = jws;
  if (header['alg'] !== 'RS256') {
    throw new AttestationError('UNSUPPORTED_ALGORITHM', `MAA tokens are RS256, not ${JSON.stringify(header['alg'])?.slice(0, 32)}`);
  }
  if (header['crit'] !== undefined) throw malformed('critical header parameters ("crit") are not supported');
  const kid = header['kid'];
  if (typeof kid !== 'string' || kid.length === 0) throw malformed('the header has no "kid"');
  // Claims are parsed before the signature check only to fail fast on shapes we
  // cannot map; nothing from them is trusted until the signature verified.
  const claims = mapMaaClaims(jws.payload, kid);
  const key = findMaaSigningKey(options.jwks, kid);
  return { jws, key, claims, now, skewMs, ...(expectedIssuer === undefined ? {} : { expectedIssuer }) };
}

function signatureInvalid(cause?: unknown): AttestationError {
  return new AttestationError('SIGNATURE_INVALID', 'MAA token signature does not verify under the key set entry with its kid', undefined, {
    cause,
  });
}

async function verifySignatureJose(p: Prepared): Promise<void> {
  let key: Awaited<ReturnType<typeof importX509>>;
  try {
    key =
      p.key.certificatePem !== undefined
        ? await importX509(p.key.certificatePem, 'RS256')
        : ((await importJWK({ kty: 'RSA', n: p.key.jwk!.n, e: p.key.jwk!.e }, 'RS256')) as typeof key);
  } catch (err) {
    throw new AttestationError('INVALID_ARGUMENT', `MAA key set: key "${p.key.kid}" cannot be imported for RS256`, undefined, { cause: err });
  }
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(p.jws.text, key, { algorithms: ['RS256'] }));
  } catch (err) {
    if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw signatureInvalid(err);
    throw new AttestationError('EVIDENCE_MALFORMED', 'MAA token is not a valid JWS', undefined, { cause: err });
  }
  if (!bytesEqual(payload, p.jws.payloadBytes)) throw new AttestationError('INTERNAL_ERROR', 'jose returned a different payload');
}

function verifySignatureNode(p: Prepared): void {
  let ok: boolean;
  try {
    ok = nodeVerify('sha256', p.jws.signingInput, { key: p.key.key, padding: cryptoConstants.RSA_PKCS1_PADDING }, p.jws.signature);
  } catch (err) {
    throw signatureInvalid(err);
  }
  if (!ok) throw signatureInvalid();
}

function finish(p: Prepared, digestOf: string): MaaAttestationResult {
  const { claims, key, now, skewMs } = p;
  const t = now.getTime();
  if (p.expectedIssuer !== undefined && claims.issuer.replace(/\/$/, '') !== p.expectedIssuer.replace(/\/$/, '')) {
    throw new AttestationError('UNTRUSTED_ROOT', `MAA token issuer "${claims.issuer.slice(0, 256)}" is not the expected "${p.expectedIssuer}"`, {
      issuer: claims.issuer.slice(0, 256),
      expectedIssuer: p.expectedIssuer,
    });
  }
  if (key.notAfter !== undefined && t > key.notAfter.getTime()) {
    throw new AttestationError('EVIDENCE_EXPIRED', `the MAA signing certificate expired ${key.notAfter.toISOString()}`, { kid: key.kid });
  }
  if (key.notBefore !== undefined && t < key.notBefore.getTime()) {
    throw new AttestationError('EVIDENCE_NOT_YET_VALID', `the MAA signing certificate is valid from ${key.notBefore.toISOString()}`, { kid: key.kid });
  }
  if (t >= claims.exp * 1000) {
    throw new AttestationError('EVIDENCE_EXPIRED', `MAA token expired ${isoSeconds(claims.exp)} (evaluation time ${now.toISOString()})`, {
      exp: isoSeconds(claims.exp),
    });
  }
  if (claims.nbf !== undefined && claims.nbf * 1000 > t + skewMs) {
    throw new AttestationError('EVIDENCE_NOT_YET_VALID', `MAA token is valid from ${isoSeconds(claims.nbf)} (evaluation time ${now.toISOString()})`);
  }
  if (claims.iat * 1000 > t + skewMs) {
    throw new AttestationError('EVIDENCE_NOT_YET_VALID', `MAA token issued at ${isoSeconds(claims.iat)}, after the evaluation time ${now.toISOString()}`);
  }
  const start = Math.max((claims.nbf ?? claims.iat) * 1000, key.notBefore?.getTime() ?? -Infinity);
  const end = Math.min(claims.exp * 1000, key.notAfter?.getTime() ?? Infinity);
  const result: MaaAttestationResult = {
    platform: claims.platform,
    measurement: claims.measurement,
    reportData: claims.reportData,
    ...(claims.hostData === undefined ? {} : { hostData: claims.hostData }),
    debug: claims.debug,
    tcb: claims.tcb,
    signingKey: 'maa',
    validity: { notBefore: new Date(Math.floor(start)).toISOString(), notAfter: new Date(Math.floor(end)).toISOString() },
    issuedAt: isoSeconds(claims.iat),
    rootKeyId: key.keyId,
    evidenceDigest: digestOf,
    maa: claims.summary,
  };
  return deepFreeze(result);
}

function rethrow(err: unknown): never {
  if (err instanceof AttestationError) throw err;
  throw new AttestationError('INTERNAL_ERROR', 'verifyMaaToken: unexpected failure', undefined, { cause: err });
}

/**
 * Verifies an Azure Attestation token against the issuer's signing key set at
 * `now` and maps it to the common result. Rejects only with AttestationError.
 */
export async function verifyMaaToken(token: string | Uint8Array, options: VerifyMaaOptions): Promise<MaaAttestationResult> {
  try {
    const p = prepare(token, options);
    await verifySignatureJose(p);
    return finish(p, sha256Hex(p.jws.text));
  } catch (err) {
    rethrow(err);
  }
}

/**
 * The same verification, synchronously (RS256 through node:crypto instead of
 * jose), for synchronous callers such as a format-dispatching verifyEvidence.
 * Same checks, same result, same error codes.
 */
export function verifyMaaTokenSync(token: string | Uint8Array, options: VerifyMaaOptions): MaaAttestationResult {
  return guarded('verifyMaaTokenSync', () => {
    const p = prepare(token, options);
    verifySignatureNode(p);
    return finish(p, sha256Hex(p.jws.text));
  });
}

export interface UnverifiedMaaToken {
  readonly header: Readonly<Record<string, unknown>>;
  readonly payload: Readonly<Record<string, unknown>>;
  /** The claims mapped to result fields. NOT VERIFIED: never use them for a trust decision. */
  readonly claims: MappedMaaClaims;
  readonly evidenceDigest: string;
}

/**
 * Decodes and maps a token WITHOUT verifying its signature or times, e.g. to
 * show what a token claims whose key set is unavailable. Nothing returned is
 * authenticated.
 */
export function decodeMaaTokenUnverified(token: string | Uint8Array): UnverifiedMaaToken {
  return guarded('decodeMaaTokenUnverified', () => {
    const jws = parseCompactJws(extractMaaToken(token));
    const kid = typeof jws.header['kid'] === 'string' ? jws.header['kid'] : '';
    return deepFreeze({
      header: jws.header,
      payload: jws.payload,
      claims: mapMaaClaims(jws.payload, kid),
      evidenceDigest: sha256Hex(jws.text),
    });
  });
}
