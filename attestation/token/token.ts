import { KeyObject, createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import { SignJWT, compactVerify, errors as joseErrors } from 'jose';
import { checkReportData, reportDataFor } from '../binding.js';
import { AttestationError, guarded } from '../errors.js';
import { bytesEqual, deepFreeze, fromHex, isBytes, isLowerHex, toHex } from '../internal/bytes.js';
import { parseCompactJws, type CompactJws } from '../maa/jws.js';
import { MEASUREMENT_BYTES, isAttestationPlatform, type AttestationPlatform, type AttestationResult, type TcbSummary } from '../result.js';

/**
 * Cloister attestation tokens: a short-lived JWT an enclave signs with its own
 * Ed25519 key, restating what its evidence proves. A relying party verifies the
 * token TOGETHER with that evidence: the token adds the enclave's signature at a
 * recent time (liveness of the key bound by report_data), the audience and the
 * public keys; the evidence remains the proof. Claims: attestation/README.md,
 * section "Attestation tokens".
 */

/** JWS `typ` of attestation tokens (explicit typing, RFC 8725 §3.11). */
export const ATTESTATION_TOKEN_TYPE = 'cloister-attestation+jwt';
/** Value of the `ver` claim. */
export const ATTESTATION_TOKEN_VERSION = 1;
export const DEFAULT_TOKEN_TTL_SECONDS = 300;
/** Upper bound on a token's lifetime (exp - iat), at issuance and (by default) at verification. */
export const MAX_TOKEN_TTL_SECONDS = 3600;
const MAX_TOKEN_CHARS = 64 * 1024;
const ACCEPTED_ALGS = ['EdDSA', 'Ed25519'];

/** WebCrypto key (what jose's generateKeyPair / importJWK return). */
type CryptoKey = webcrypto.CryptoKey;

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** An Ed25519 private key: jose/WebCrypto CryptoKey, node KeyObject, or the raw 32-byte seed (bytes or hex). */
export type EnclaveSigningKey = CryptoKey | KeyObject | Uint8Array | string;
/** An Ed25519 public key: CryptoKey, KeyObject, or the raw 32-byte key (bytes or hex, as in report_data's publicKeys). */
export type EnclavePublicKey = CryptoKey | KeyObject | Uint8Array | string;

/** What the enclave states (normally its own verified AttestationResult plus its public keys). */
export interface AttestationTokenClaimsInput {
  readonly platform: AttestationPlatform;
  readonly measurement: string;
  readonly reportData: string;
  readonly hostData?: string;
  readonly debug: boolean;
  readonly tcb: TcbSummary;
  /** The public keys bound by report_data (name → hex), e.g. { vote: "…" }; must include the signing key. */
  readonly publicKeys: Readonly<Record<string, string>>;
}

export interface IssueAttestationTokenOptions {
  readonly signingKey: EnclaveSigningKey;
  /** Extra members of an AttestationResult are ignored, so `{ ...result, publicKeys }` works. */
  readonly claims: AttestationTokenClaimsInput;
  /** SHA-256 (hex) of the enclave's evidence: AttestationResult.evidenceDigest. */
  readonly evidenceDigest: string;
  /** `iss`: who issues, e.g. the node id. */
  readonly issuer: string;
  /** `aud`: the relying party the token is for. */
  readonly audience?: string;
  readonly now: Date;
  /** Lifetime in seconds, 1..MAX_TOKEN_TTL_SECONDS. Default DEFAULT_TOKEN_TTL_SECONDS (300). */
  readonly ttlSeconds?: number;
}

export interface VerifyAttestationTokenOptions {
  /** The result of verifying the enclave's evidence (verifyEvidence / verifyMaaToken / …). */
  readonly evidenceResult: AttestationResult;
  /** The enclave key bound by report_data, the one that must have signed the token. */
  readonly publicKey: EnclavePublicKey;
  readonly now: Date;
  /** Required when the token has an `aud`, and then must equal it. A token without `aud` is refused when one is expected. */
  readonly audience?: string;
  /** When given, `iss` must equal it. */
  readonly issuer?: string;
  /** Largest accepted exp - iat, seconds. Default MAX_TOKEN_TTL_SECONDS. */
  readonly maxLifetimeSeconds?: number;
  /** Tolerance for iat/nbf slightly after `now`, seconds. Default 0. */
  readonly maxClockSkewSeconds?: number;
  /**
   * When given, also checks the binding: evidenceResult.reportData must equal
   * reportDataFor({ publicKeys: <the token's public_keys>, ...binding }), so the
   * token's public keys are exactly the ones the evidence binds (REPORT_DATA_MISMATCH otherwise).
   */
  readonly binding?: { readonly chainId: string; readonly nodeId: string; readonly freshness: string };
}

/** The verified claims, camelCase, times ISO-8601 UTC. */
export interface AttestationTokenClaims {
  readonly issuer: string;
  readonly audience?: string;
  readonly issuedAt: string;
  readonly notBefore: string;
  readonly expiresAt: string;
  readonly platform: AttestationPlatform;
  readonly measurement: string;
  readonly reportData: string;
  readonly hostData?: string;
  readonly debug: boolean;
  readonly tcb: TcbSummary;
  readonly publicKeys: Readonly<Record<string, string>>;
  readonly evidenceDigest: string;
  /** Raw Ed25519 public key that signed the token, hex (the header `kid`). */
  readonly keyId: string;
}

// ---------------------------------------------------------------------------------------------

function badArg(message: string): AttestationError {
  return new AttestationError('INVALID_ARGUMENT', message);
}

function malformed(message: string, claim?: string): AttestationError {
  return new AttestationError('EVIDENCE_MALFORMED', `attestation token: ${message}`, claim === undefined ? undefined : { claim });
}

function mismatch(claim: string, expected: unknown, actual: unknown, message?: string): AttestationError {
  return new AttestationError(
    'REPORT_DATA_MISMATCH',
    message ?? `attestation token claim "${claim}" does not match the enclave's evidence`,
    { claim, expected, actual },
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !isBytes(value);
}

function checkDate(value: unknown, name: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw badArg(`${name} must be a valid Date`);
  return value;
}

function isCryptoKey(value: unknown): value is CryptoKey {
  // A global in Node 20 (not exposed on node:crypto's webcrypto object there).
  const ctor = (globalThis as { CryptoKey?: abstract new () => unknown }).CryptoKey;
  return typeof ctor === 'function' && value instanceof ctor;
}

function ed25519Seed(bytes: Uint8Array | undefined): KeyObject {
  if (bytes === undefined || bytes.length !== 32) throw badArg('an Ed25519 private key seed is 32 bytes (or 64 hex characters)');
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, bytes]), format: 'der', type: 'pkcs8' });
}

function privateKeyObject(key: EnclaveSigningKey): KeyObject {
  let k: KeyObject;
  if (typeof key === 'string') k = ed25519Seed(fromHex(key));
  else if (isBytes(key)) k = ed25519Seed(key);
  else if (key instanceof KeyObject) k = key;
  else if (isCryptoKey(key)) k = KeyObject.from(key);
  else throw badArg('signingKey must be an Ed25519 CryptoKey, KeyObject or 32-byte seed');
  if (k.type !== 'private' || k.asymmetricKeyType !== 'ed25519') throw badArg('signingKey must be an Ed25519 private key');
  return k;
}

function publicKeyObject(key: EnclavePublicKey): KeyObject {
  let k: KeyObject;
  const raw = typeof key === 'string' ? fromHex(key) : isBytes(key) ? key : undefined;
  if (typeof key === 'string' || isBytes(key)) {
    if (raw === undefined || raw.length !== 32) throw badArg('an Ed25519 public key is 32 bytes (or 64 hex characters)');
    try {
      k = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
    } catch (err) {
      throw new AttestationError('INVALID_ARGUMENT', 'publicKey is not an Ed25519 public key', undefined, { cause: err });
    }
  } else if (key instanceof KeyObject) k = key;
  else if (isCryptoKey(key)) k = KeyObject.from(key);
  else throw badArg('publicKey must be an Ed25519 CryptoKey, KeyObject or 32 raw bytes');
  if (k.type === 'private') k = createPublicKey(k);
  if (k.type !== 'public' || k.asymmetricKeyType !== 'ed25519') throw badArg('publicKey must be an Ed25519 public key');
  return k;
}

/** Raw 32-byte Ed25519 public key, lowercase hex. */
function rawPublicHex(k: KeyObject): string {
  const pub = k.type === 'private' ? createPublicKey(k) : k;
  // DER, not JWK: on Node 20 an Ed25519/X25519 JWK export can deadlock with the garbage collector.
  return toHex(new Uint8Array(pub.export({ format: 'der', type: 'spki' }).subarray(12)));
}

function hexField(value: unknown, name: string, bytes: number | undefined, fail: (m: string) => AttestationError): string {
  const b = typeof value === 'string' ? fromHex(value) : undefined;
  if (b === undefined || (bytes !== undefined ? b.length !== bytes : b.length === 0)) {
    throw fail(`${name} must be ${bytes === undefined ? 'non-empty' : `${bytes} bytes of`} hex`);
  }
  return toHex(b);
}

function tcbField(value: unknown, fail: (m: string) => AttestationError): TcbSummary {
  if (!isPlainObject(value) || !isPlainObject(value['components']) || typeof value['raw'] !== 'string' || !isLowerHex(value['raw'])) {
    throw fail('tcb must be { components: { name: integer }, raw: lowercase hex, status?, advisoryIds? }');
  }
  const components: Record<string, number> = {};
  for (const [k, v] of Object.entries(value['components'] as Record<string, unknown>)) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw fail(`tcb component "${k}" must be a non-negative integer`);
    components[k] = v;
  }
  const out: { components: Record<string, number>; raw: string; status?: TcbSummary['status']; advisoryIds?: string[] } = {
    components,
    raw: value['raw'] as string,
  };
  if (value['status'] !== undefined) {
    if (typeof value['status'] !== 'string') throw fail('tcb.status must be a string');
    out.status = value['status'] as TcbSummary['status'];
  }
  if (value['advisoryIds'] !== undefined) {
    const ids = value['advisoryIds'];
    if (!Array.isArray(ids) || !ids.every((x) => typeof x === 'string')) throw fail('tcb.advisoryIds must be strings');
    out.advisoryIds = [...(ids as string[])];
  }
  return out;
}

function publicKeysField(value: unknown, fail: (m: string) => AttestationError): Record<string, string> {
  if (!isPlainObject(value)) throw fail('publicKeys must be an object of name → hex');
  const entries = Object.entries(value);
  if (entries.length === 0) throw fail('publicKeys must name at least one key');
  const out: Record<string, string> = {};
  for (const [name, hex] of entries) {
    if (name.length === 0) throw fail('public key names must be non-empty');
    out[name] = hexField(hex, `public key "${name}"`, undefined, fail);
  }
  return out;
}

interface ClaimSet {
  platform: AttestationPlatform;
  measurement: string;
  reportData: string;
  hostData?: string;
  debug: boolean;
  tcb: TcbSummary;
  publicKeys: Record<string, string>;
}

function claimSet(c: Record<string, unknown>, names: Record<keyof ClaimSet, string>, fail: (m: string) => AttestationError): ClaimSet {
  const platform = c[names.platform];
  if (!isAttestationPlatform(platform)) throw fail(`${names.platform} must be an attestation platform`);
  const out: ClaimSet = {
    platform,
    measurement: hexField(c[names.measurement], names.measurement, MEASUREMENT_BYTES[platform], fail),
    reportData: hexField(c[names.reportData], names.reportData, 64, fail),
    debug: (() => {
      const d = c[names.debug];
      if (typeof d !== 'boolean') throw fail(`${names.debug} must be a boolean`);
      return d;
    })(),
    tcb: tcbField(c[names.tcb], fail),
    publicKeys: publicKeysField(c[names.publicKeys], fail),
  };
  if (c[names.hostData] !== undefined) out.hostData = hexField(c[names.hostData], names.hostData, undefined, fail);
  return out;
}

const INPUT_NAMES = {
  platform: 'platform',
  measurement: 'measurement',
  reportData: 'reportData',
  hostData: 'hostData',
  debug: 'debug',
  tcb: 'tcb',
  publicKeys: 'publicKeys',
} as const;
const CLAIM_NAMES = {
  platform: 'platform',
  measurement: 'measurement',
  reportData: 'report_data',
  hostData: 'host_data',
  debug: 'debug',
  tcb: 'tcb',
  publicKeys: 'public_keys',
} as const;

// ---------------------------------------------------------------------------------------------

function prepareIssue(options: IssueAttestationTokenOptions): { key: KeyObject; kid: string; payload: Record<string, unknown> } {
  if (!isPlainObject(options)) throw badArg('options must be an object');
  const now = checkDate(options.now, 'now');
  const ttl = options.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
  if (!Number.isSafeInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_TTL_SECONDS) {
    throw badArg(`ttlSeconds must be an integer in 1..${MAX_TOKEN_TTL_SECONDS}`);
  }
  if (typeof options.issuer !== 'string' || options.issuer.length === 0) throw badArg('issuer must be a non-empty string');
  if (options.audience !== undefined && (typeof options.audience !== 'string' || options.audience.length === 0)) {
    throw badArg('audience must be a non-empty string');
  }
  if (!isPlainObject(options.claims)) throw badArg('claims must be an object');
  const claims = claimSet(options.claims as unknown as Record<string, unknown>, INPUT_NAMES, (m) => badArg(`claims.${m}`));
  const evidenceDigest = hexField(options.evidenceDigest, 'evidenceDigest', 32, badArg);
  const key = privateKeyObject(options.signingKey);
  const kid = rawPublicHex(key);
  if (!Object.values(claims.publicKeys).includes(kid)) {
    throw badArg('the signing key must be one of claims.publicKeys (the keys report_data binds)');
  }
  const iat = Math.floor(now.getTime() / 1000);
  const payload: Record<string, unknown> = {
    ver: ATTESTATION_TOKEN_VERSION,
    iss: options.issuer,
    ...(options.audience === undefined ? {} : { aud: options.audience }),
    iat,
    nbf: iat,
    exp: iat + ttl,
    platform: claims.platform,
    measurement: claims.measurement,
    report_data: claims.reportData,
    ...(claims.hostData === undefined ? {} : { host_data: claims.hostData }),
    debug: claims.debug,
    tcb: claims.tcb,
    public_keys: claims.publicKeys,
    evidence_digest: evidenceDigest,
  };
  return { key, kid, payload };
}

/**
 * Issues an attestation token (compact JWS, EdDSA/Ed25519). Rejects only with
 * AttestationError (INVALID_ARGUMENT for bad options).
 */
export async function issueAttestationToken(options: IssueAttestationTokenOptions): Promise<string> {
  try {
    const { key, kid, payload } = guarded('issueAttestationToken', () => prepareIssue(options));
    return await new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', typ: ATTESTATION_TOKEN_TYPE, kid }).sign(key);
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    throw new AttestationError('INTERNAL_ERROR', 'issueAttestationToken: unexpected failure', undefined, { cause: err });
  }
}

// ---------------------------------------------------------------------------------------------

interface PreparedVerify {
  jws: CompactJws;
  key: KeyObject;
  keyHex: string;
  now: Date;
  evidence: AttestationResult;
  options: VerifyAttestationTokenOptions;
}

function tokenText(token: unknown): string {
  let text: string | undefined;
  if (typeof token === 'string') text = token;
  else if (isBytes(token) && token.length <= MAX_TOKEN_CHARS) text = Buffer.from(token).toString('latin1');
  if (text === undefined || text.length > MAX_TOKEN_CHARS) throw malformed(`must be a string of at most ${MAX_TOKEN_CHARS} characters`);
  return text.trim();
}

function prepareVerify(token: string | Uint8Array, options: VerifyAttestationTokenOptions): PreparedVerify {
  if (!isPlainObject(options)) throw badArg('options must be an object');
  const now = checkDate(options.now, 'now');
  const evidence = options.evidenceResult;
  if (!isPlainObject(evidence) || !isAttestationPlatform(evidence.platform) || typeof evidence.evidenceDigest !== 'string') {
    throw badArg('evidenceResult must be an AttestationResult');
  }
  for (const [name, v] of [
    ['maxLifetimeSeconds', options.maxLifetimeSeconds],
    ['maxClockSkewSeconds', options.maxClockSkewSeconds],
  ] as const) {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw badArg(`${name} must be a non-negative integer`);
  }
  for (const [name, v] of [
    ['audience', options.audience],
    ['issuer', options.issuer],
  ] as const) {
    if (v !== undefined && (typeof v !== 'string' || v.length === 0)) throw badArg(`${name} must be a non-empty string`);
  }
  const key = publicKeyObject(options.publicKey);
  const jws = parseCompactJws(tokenText(token));
  const { header } = jws;
  if (typeof header['alg'] !== 'string' || !ACCEPTED_ALGS.includes(header['alg'])) {
    throw new AttestationError('UNSUPPORTED_ALGORITHM', `attestation tokens are EdDSA (Ed25519), not ${JSON.stringify(header['alg'])?.slice(0, 32)}`);
  }
  if (header['typ'] !== ATTESTATION_TOKEN_TYPE) throw malformed(`typ must be "${ATTESTATION_TOKEN_TYPE}"`);
  if (header['crit'] !== undefined) throw malformed('critical header parameters ("crit") are not supported');
  return { jws, key, keyHex: rawPublicHex(key), now, evidence, options };
}

function numericDate(payload: Record<string, unknown>, name: string): number {
  const v = payload[name];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > 8.64e12 / 1000) throw malformed(`${name} must be an integer NumericDate`, name);
  return v;
}

const iso = (seconds: number): string => new Date(seconds * 1000).toISOString();

function tcbEqual(a: TcbSummary, b: TcbSummary): boolean {
  const ka = Object.keys(a.components).sort();
  const kb = Object.keys(b.components ?? {}).sort();
  return (
    a.raw === b.raw &&
    a.status === b.status &&
    ka.length === kb.length &&
    ka.every((k, i) => k === kb[i] && a.components[k] === b.components[k]) &&
    JSON.stringify(a.advisoryIds ?? null) === JSON.stringify(b.advisoryIds ?? null)
  );
}

function finishVerify(p: PreparedVerify): AttestationTokenClaims {
  const { jws, now, evidence, options, keyHex } = p;
  const payload = jws.payload;
  if (jws.header['kid'] !== undefined && jws.header['kid'] !== keyHex) {
    // The signature verified under publicKey, so a different kid is a malformed token, not a key problem.
    throw malformed('kid does not name the key that signed the token');
  }
  if (payload['ver'] !== ATTESTATION_TOKEN_VERSION) throw malformed(`ver must be ${ATTESTATION_TOKEN_VERSION}`, 'ver');
  const iss = payload['iss'];
  if (typeof iss !== 'string' || iss.length === 0) throw malformed('iss must be a non-empty string', 'iss');
  const aud = payload['aud'];
  if (aud !== undefined && (typeof aud !== 'string' || aud.length === 0)) throw malformed('aud must be a non-empty string', 'aud');
  const iat = numericDate(payload, 'iat');
  const nbf = numericDate(payload, 'nbf');
  const exp = numericDate(payload, 'exp');
  const digest = hexField(payload['evidence_digest'], 'evidence_digest', 32, (m) => malformed(m, 'evidence_digest'));
  const claims = claimSet(payload, CLAIM_NAMES, (m) => malformed(m));

  // lifetime and times
  const maxLifetime = options.maxLifetimeSeconds ?? MAX_TOKEN_TTL_SECONDS;
  if (exp <= iat || nbf < iat || nbf >= exp) throw malformed('times must satisfy iat <= nbf < exp');
  if (exp - iat > maxLifetime) {
    throw new AttestationError('EVIDENCE_MALFORMED', `attestation token lifetime ${exp - iat} s exceeds the maximum ${maxLifetime} s`, {
      claim: 'exp',
    });
  }
  const t = now.getTime();
  const skew = (options.maxClockSkewSeconds ?? 0) * 1000;
  if (t >= exp * 1000) throw new AttestationError('EVIDENCE_EXPIRED', `attestation token expired ${iso(exp)} (evaluation time ${now.toISOString()})`);
  if (nbf * 1000 > t + skew || iat * 1000 > t + skew) {
    throw new AttestationError('EVIDENCE_NOT_YET_VALID', `attestation token is valid from ${iso(nbf)} (evaluation time ${now.toISOString()})`);
  }

  // audience / issuer
  if (options.audience !== undefined && aud !== options.audience) {
    throw mismatch('aud', options.audience, aud ?? null, `attestation token is for audience ${JSON.stringify(aud ?? null)}, not "${options.audience}"`);
  }
  if (options.audience === undefined && aud !== undefined) {
    throw mismatch('aud', null, aud, `attestation token is for audience "${aud}"; the relying party must pass its audience to accept it`);
  }
  if (options.issuer !== undefined && iss !== options.issuer) {
    throw new AttestationError('UNTRUSTED_ROOT', `attestation token issuer "${iss.slice(0, 128)}" is not "${options.issuer}"`, { claim: 'iss' });
  }

  // token ↔ evidence
  const ev = evidence;
  if (digest !== String(ev.evidenceDigest).toLowerCase()) throw mismatch('evidence_digest', ev.evidenceDigest, digest);
  if (claims.platform !== ev.platform) throw mismatch('platform', ev.platform, claims.platform);
  if (claims.measurement !== ev.measurement) throw mismatch('measurement', ev.measurement, claims.measurement);
  if (claims.reportData !== ev.reportData) throw mismatch('report_data', ev.reportData, claims.reportData);
  if ((claims.hostData ?? null) !== (ev.hostData ?? null)) throw mismatch('host_data', ev.hostData ?? null, claims.hostData ?? null);
  if (claims.debug !== ev.debug) throw mismatch('debug', ev.debug, claims.debug);
  if (!isPlainObject(ev.tcb) || !isPlainObject(ev.tcb.components) || !tcbEqual(claims.tcb, ev.tcb)) throw mismatch('tcb', ev.tcb, claims.tcb);
  if (!Object.values(claims.publicKeys).includes(keyHex)) {
    throw mismatch('public_keys', keyHex, claims.publicKeys, 'the key that signed the attestation token is not among its public_keys');
  }
  if (options.binding !== undefined) {
    if (!isPlainObject(options.binding)) throw badArg('binding must be { chainId, nodeId, freshness }');
    const want = reportDataFor({ publicKeys: claims.publicKeys, ...options.binding });
    checkReportData(ev, want);
  }

  const out: AttestationTokenClaims = {
    issuer: iss,
    ...(aud === undefined ? {} : { audience: aud as string }),
    issuedAt: iso(iat),
    notBefore: iso(nbf),
    expiresAt: iso(exp),
    platform: claims.platform,
    measurement: claims.measurement,
    reportData: claims.reportData,
    ...(claims.hostData === undefined ? {} : { hostData: claims.hostData }),
    debug: claims.debug,
    tcb: claims.tcb,
    publicKeys: claims.publicKeys,
    evidenceDigest: digest,
    keyId: keyHex,
  };
  return deepFreeze(out);
}

/**
 * Verifies an attestation token together with the verified result of the
 * enclave's evidence. Checks, in order: the header (alg EdDSA, typ, no crit),
 * the signature under `publicKey`, the claim shapes, the lifetime (<=
 * maxLifetimeSeconds) and exp/nbf/iat at `now`, audience and issuer, then that
 * evidence_digest / platform / measurement / report_data / host_data / debug /
 * tcb equal the evidence's, that the signing key is one of public_keys, and
 * (with `binding`) that report_data binds exactly those public_keys.
 *
 * Codes: SIGNATURE_INVALID (wrong key, changed token), UNSUPPORTED_ALGORITHM,
 * EVIDENCE_MALFORMED (shape, lifetime too long), EVIDENCE_EXPIRED,
 * EVIDENCE_NOT_YET_VALID, REPORT_DATA_MISMATCH (the token does not speak for
 * this evidence or this audience; `details.claim` names the claim),
 * UNTRUSTED_ROOT (issuer differs), INVALID_ARGUMENT (options).
 */
export async function verifyAttestationToken(token: string | Uint8Array, options: VerifyAttestationTokenOptions): Promise<AttestationTokenClaims> {
  try {
    const p = guarded('verifyAttestationToken', () => prepareVerify(token, options));
    let payload: Uint8Array;
    try {
      ({ payload } = await compactVerify(p.jws.text, p.key, { algorithms: ACCEPTED_ALGS }));
    } catch (err) {
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
        throw new AttestationError('SIGNATURE_INVALID', 'attestation token is not signed by the given enclave key', undefined, { cause: err });
      }
      throw new AttestationError('EVIDENCE_MALFORMED', 'attestation token is not a valid JWS', undefined, { cause: err });
    }
    if (!bytesEqual(payload, p.jws.payloadBytes)) throw new AttestationError('INTERNAL_ERROR', 'jose returned a different payload');
    return guarded('verifyAttestationToken', () => finishVerify(p));
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    throw new AttestationError('INTERNAL_ERROR', 'verifyAttestationToken: unexpected failure', undefined, { cause: err });
  }
}

/**
 * Reads a token's header and claims WITHOUT verifying anything (e.g. to find
 * which evidence and key to verify it with). Never base a decision on it.
 */
export function decodeAttestationTokenUnverified(token: string | Uint8Array): {
  readonly header: Readonly<Record<string, unknown>>;
  readonly payload: Readonly<Record<string, unknown>>;
} {
  return guarded('decodeAttestationTokenUnverified', () => {
    const jws = parseCompactJws(tokenText(token));
    return deepFreeze({ header: jws.header, payload: jws.payload });
  });
}
