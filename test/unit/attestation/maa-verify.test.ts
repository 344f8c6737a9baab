import { KeyObject, createHash, createPublicKey, randomBytes, sign as nodeSign, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { SignJWT, importPKCS8 } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { AttestationError } from '../../../attestation/index.js';
import {
  decodeMaaTokenUnverified,
  extractMaaToken,
  verifyMaaToken,
  verifyMaaTokenSync,
  type MaaAttestationResult,
  type VerifyMaaOptions,
} from '../../../attestation/maa/index.js';
import { codeOf } from './helpers.js';
import { samplesAbsentMessage, samplesPresent, sampleText, sample } from './samples.js';

/** Awaits fn, asserts it rejects with an AttestationError (and nothing else), returns its code. */
async function asyncCodeOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AttestationError);
    return (err as AttestationError).code;
  }
  throw new Error('expected an AttestationError, nothing was thrown');
}

/** Both entry points must agree on every outcome. */
async function bothCodes(token: string | Uint8Array, options: VerifyMaaOptions): Promise<string> {
  const a = await asyncCodeOf(() => verifyMaaToken(token, options));
  const b = codeOf(() => verifyMaaTokenSync(token, options));
  expect(b).toBe(a);
  return a;
}

const sha256hex = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');
const b64url = (data: string | Uint8Array): string => Buffer.from(data).toString('base64url');

// ---------------------------------------------------------------------------------------------
// A test "MAA instance": RSA-2048 key, self-signed certificate, JWKS in MAA's shape (x5c only).
// ---------------------------------------------------------------------------------------------

x509.cryptoProvider.set(webcrypto as never);
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const RSA = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };

interface TestIssuer {
  issuer: string;
  kid: string;
  certDerB64: string;
  privateKey: KeyObject | CryptoKey;
  publicKey: KeyObject;
  jwks: { keys: Array<Record<string, unknown>> };
}

// RSA key generation dominates the run time: two key pairs serve every test issuer.
const keyPool: Array<Promise<CryptoKeyPair>> = [];
function poolKey(i: 0 | 1): Promise<CryptoKeyPair> {
  keyPool[i] ??= webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
  return keyPool[i]!;
}

async function makeIssuer(
  issuer: string,
  kid: string,
  validity = { from: '2020-01-01T00:00:00Z', to: '2040-01-01T00:00:00Z' },
  keyIndex: 0 | 1 = 0,
): Promise<TestIssuer> {
  const keys = await poolKey(keyIndex);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'),
    name: `CN=${issuer}`,
    notBefore: new Date(validity.from),
    notAfter: new Date(validity.to),
    keys,
    signingAlgorithm: RSA,
  });
  const certDerB64 = Buffer.from(cert.rawData).toString('base64');
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
  const privateKey = await importPKCS8(`-----BEGIN PRIVATE KEY-----\n${pkcs8}\n-----END PRIVATE KEY-----`, 'RS256');
  const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey));
  const publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  return { issuer, kid, certDerB64, privateKey, publicKey, jwks: { keys: [{ kid, kty: 'RSA', x5c: [certDerB64] }] } };
}

const IAT = 1_767_225_600; // 2026-01-01T00:00:00Z
const EXP = IAT + 8 * 3600;
const inside = new Date((IAT + 60) * 1000);

const RUNTIME = new TextEncoder().encode('{"jwk":{"kty":"OKP","crv":"Ed25519","x":"test"}}');
const MRENCLAVE = 'aa'.repeat(32);
const MRSIGNER = 'bb'.repeat(32);

function sgxClaims(issuer: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const rd = sha256hex(RUNTIME) + '00'.repeat(32);
  return {
    iss: issuer,
    iat: IAT,
    nbf: IAT,
    exp: EXP,
    jti: 'ab'.repeat(32),
    'x-ms-attestation-type': 'sgx',
    'x-ms-ver': '1.0',
    'x-ms-policy-hash': 'bROrN897ZfWmWY2V0FLUlu3uwk5xatGnKYHn3zBbSlw',
    'x-ms-sgx-mrenclave': MRENCLAVE,
    'x-ms-sgx-mrsigner': MRSIGNER,
    'x-ms-sgx-is-debuggable': false,
    'x-ms-sgx-product-id': 7,
    'x-ms-sgx-svn': 3,
    'x-ms-sgx-report-data': rd,
    'x-ms-sgx-ehd': b64url(RUNTIME),
    'sgx-mrenclave': MRENCLAVE,
    'is-debuggable': false,
    ...extra,
  };
}

function snpClaims(issuer: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: issuer,
    iat: IAT,
    nbf: IAT,
    exp: EXP,
    'x-ms-attestation-type': 'sevsnpvm',
    'x-ms-sevsnpvm-launchmeasurement': 'CC'.repeat(48),
    'x-ms-sevsnpvm-reportdata': '11'.repeat(64),
    'x-ms-sevsnpvm-hostdata': '22'.repeat(32),
    'x-ms-sevsnpvm-is-debuggable': false,
    'x-ms-sevsnpvm-bootloader-svn': 3,
    'x-ms-sevsnpvm-tee-svn': 0,
    'x-ms-sevsnpvm-snpfw-svn': 8,
    'x-ms-sevsnpvm-microcode-svn': 115,
    'x-ms-sevsnpvm-guestsvn': 2,
    'x-ms-sevsnpvm-vmpl': 0,
    'x-ms-sevsnpvm-smt-allowed': true,
    'x-ms-sevsnpvm-migration-allowed': false,
    ...extra,
  };
}

async function sign(iss: TestIssuer, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', jku: `${iss.issuer}/certs`, kid: iss.kid, typ: 'JWT', ...header })
    .sign(iss.privateKey);
}

/** Signs any header (jose refuses to produce some of the headers tested here). */
function signRaw(iss: TestIssuer, header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const key = iss.privateKey instanceof KeyObject ? iss.privateKey : KeyObject.from(iss.privateKey);
  return `${input}.${b64url(nodeSign('sha256', Buffer.from(input), key))}`;
}

/** Replaces the character at i by another base64url character (or a '.' by 'A'). */
function mutateAt(token: string, i: number): string {
  const c = token[i]!;
  const r = c === '.' ? 'A' : c === 'A' ? 'B' : 'A';
  return token.slice(0, i) + r + token.slice(i + 1);
}

function mutationPositions(token: string, stride: number): number[] {
  const out = new Set<number>();
  for (let i = 0; i < token.length; i += stride) out.add(i);
  for (let i = Math.max(0, token.length - 6); i < token.length; i++) out.add(i);
  let dot = token.indexOf('.');
  while (dot >= 0) {
    for (const d of [-1, 0, 1]) if (dot + d >= 0 && dot + d < token.length) out.add(dot + d);
    dot = token.indexOf('.', dot + 1);
  }
  return [...out].sort((a, b) => a - b);
}

describe('verifyMaaToken (tokens signed by a test MAA instance)', () => {
  let maa: TestIssuer;
  let other: TestIssuer; // another instance, same kid
  let sgxToken: string;
  let snpToken: string;
  let opts: VerifyMaaOptions;

  beforeAll(async () => {
    maa = await makeIssuer('https://test.wus.attest.example.net', 'test-kid=');
    other = await makeIssuer('https://evil.attest.example.net', 'test-kid=', undefined, 1);
    sgxToken = await sign(maa, sgxClaims(maa.issuer));
    snpToken = await sign(maa, snpClaims(maa.issuer));
    opts = { now: inside, jwks: maa.jwks, expectedIssuer: maa.issuer };
  });

  it('maps an SGX token to the common result with every field', async () => {
    const r = await verifyMaaToken(sgxToken, opts);
    const spki = maa.publicKey.export({ type: 'spki', format: 'der' });
    expect(r).toEqual<MaaAttestationResult>({
      platform: 'maa-sgx',
      measurement: MRENCLAVE,
      reportData: sha256hex(RUNTIME) + '00'.repeat(32),
      debug: false,
      tcb: { components: { isvSvn: 3 }, raw: '' },
      signingKey: 'maa',
      validity: { notBefore: '2026-01-01T00:00:00.000Z', notAfter: '2026-01-01T08:00:00.000Z' },
      issuedAt: '2026-01-01T00:00:00.000Z',
      rootKeyId: sha256hex(spki),
      evidenceDigest: sha256hex(sgxToken),
      maa: {
        issuer: maa.issuer,
        attestationType: 'sgx',
        kid: 'test-kid=',
        jti: 'ab'.repeat(32),
        version: '1.0',
        policyHash: 'bROrN897ZfWmWY2V0FLUlu3uwk5xatGnKYHn3zBbSlw',
        expiresAt: '2026-01-01T08:00:00.000Z',
        notBefore: '2026-01-01T00:00:00.000Z',
        sgx: {
          mrsigner: MRSIGNER,
          productId: 7,
          svn: 3,
          reportDataSource: 'x-ms-sgx-report-data',
          runtimeData: Buffer.from(RUNTIME).toString('hex'),
          runtimeDataBound: true,
        },
      },
    });
    expect(Object.isFrozen(r) && Object.isFrozen(r.tcb) && Object.isFrozen(r.maa)).toBe(true);
    expect(verifyMaaTokenSync(sgxToken, opts)).toEqual(r);
  });

  it('maps an SEV-SNP token (maa-sev-snp) with host data and the SNP TCB components', async () => {
    const r = await verifyMaaToken(snpToken, opts);
    expect(r.platform).toBe('maa-sev-snp');
    expect(r.measurement).toBe('cc'.repeat(48));
    expect(r.reportData).toBe('11'.repeat(64));
    expect(r.hostData).toBe('22'.repeat(32));
    expect(r.debug).toBe(false);
    expect(r.tcb).toEqual({ components: { bootloader: 3, tee: 0, snp: 8, microcode: 115, guestSvn: 2 }, raw: '' });
    expect(r.maa.sevSnp).toEqual({ vmpl: 0, guestSvn: 2, smtAllowed: true, migrationAllowed: false });
    expect(r.signingKey).toBe('maa');
  });

  it('accepts the token as bytes, with whitespace, and inside {"token": …}', async () => {
    const want = await verifyMaaToken(sgxToken, opts);
    expect(await verifyMaaToken(new TextEncoder().encode(`\n${sgxToken}\n`), opts)).toEqual(want);
    expect(await verifyMaaToken(JSON.stringify({ token: sgxToken }), opts)).toEqual(want);
    expect(extractMaaToken(JSON.stringify({ token: sgxToken }))).toBe(sgxToken);
  });

  it('accepts the key set as JSON text, bytes, or a JWK with n/e only', async () => {
    const want = await verifyMaaToken(sgxToken, opts);
    expect(await verifyMaaToken(sgxToken, { ...opts, jwks: JSON.stringify(maa.jwks) })).toEqual(want);
    expect(await verifyMaaToken(sgxToken, { ...opts, jwks: new TextEncoder().encode(JSON.stringify(maa.jwks)) })).toEqual(want);
    const { n, e } = maa.publicKey.export({ format: 'jwk' });
    const ne = await verifyMaaToken(sgxToken, { ...opts, jwks: { keys: [{ kid: maa.kid, kty: 'RSA', n, e }] } });
    // without a certificate only the token bounds the validity
    expect(ne.validity).toEqual(want.validity);
    expect(ne.rootKeyId).toBe(want.rootKeyId);
    const { n: n2 } = other.publicKey.export({ format: 'jwk' });
    expect(await bothCodes(sgxToken, { ...opts, jwks: { keys: [{ kid: maa.kid, kty: 'RSA', n: n2, e, x5c: [maa.certDerB64] }] } })).toBe(
      'INVALID_ARGUMENT',
    );
  });

  it('fails at a time outside the token validity and passes inside it', async () => {
    expect(await bothCodes(sgxToken, { ...opts, now: new Date(EXP * 1000) })).toBe('EVIDENCE_EXPIRED');
    expect(await bothCodes(sgxToken, { ...opts, now: new Date('2030-01-01T00:00:00Z') })).toBe('EVIDENCE_EXPIRED');
    expect(await bothCodes(sgxToken, { ...opts, now: new Date(IAT * 1000 - 1000) })).toBe('EVIDENCE_NOT_YET_VALID');
    expect((await verifyMaaToken(sgxToken, { ...opts, now: new Date(IAT * 1000 - 1000), maxClockSkewSeconds: 5 })).platform).toBe('maa-sgx');
    expect((await verifyMaaToken(sgxToken, { ...opts, now: new Date(IAT * 1000) })).platform).toBe('maa-sgx');
    expect((await verifyMaaToken(sgxToken, { ...opts, now: new Date(EXP * 1000 - 1) })).platform).toBe('maa-sgx');
    // iat in the future (nbf absent) is not yet valid either
    const t = await sign(maa, sgxClaims(maa.issuer, { nbf: undefined, iat: IAT + 3600 }));
    expect(await bothCodes(t, opts)).toBe('EVIDENCE_NOT_YET_VALID');
    // exp and iat are required
    expect(await bothCodes(await sign(maa, sgxClaims(maa.issuer, { exp: undefined })), opts)).toBe('EVIDENCE_MALFORMED');
    expect(await bothCodes(await sign(maa, sgxClaims(maa.issuer, { iat: 'yesterday' })), opts)).toBe('EVIDENCE_MALFORMED');
  });

  it('fails when the signing certificate is outside its validity, and bounds the result validity by it', async () => {
    const short = await makeIssuer(maa.issuer, 'short', { from: '2025-01-01T00:00:00Z', to: '2026-01-01T04:00:00Z' });
    const t = await sign(short, sgxClaims(short.issuer));
    const r = await verifyMaaToken(t, { now: inside, jwks: short.jwks });
    expect(r.validity).toEqual({ notBefore: '2026-01-01T00:00:00.000Z', notAfter: '2026-01-01T04:00:00.000Z' });
    expect(await bothCodes(t, { now: new Date('2026-01-01T05:00:00Z'), jwks: short.jwks })).toBe('EVIDENCE_EXPIRED');
    const late = await makeIssuer(maa.issuer, 'late', { from: '2026-06-01T00:00:00Z', to: '2027-01-01T00:00:00Z' });
    expect(await bothCodes(await sign(late, sgxClaims(late.issuer)), { now: inside, jwks: late.jwks })).toBe('EVIDENCE_NOT_YET_VALID');
  });

  it('fails with the wrong key set, no matching kid, or no key set at all', async () => {
    expect(await bothCodes(sgxToken, { ...opts, jwks: other.jwks })).toBe('SIGNATURE_INVALID');
    expect(await bothCodes(sgxToken, { ...opts, jwks: { keys: [] } })).toBe('UNTRUSTED_ROOT');
    expect(await bothCodes(sgxToken, { ...opts, jwks: { keys: [{ ...other.jwks.keys[0], kid: 'someone-else' }] } })).toBe('UNTRUSTED_ROOT');
    expect(await bothCodes(sgxToken, { now: inside, jwks: undefined })).toBe('COLLATERAL_MISSING');
    expect(await bothCodes(sgxToken, { ...opts, jwks: { keys: [maa.jwks.keys[0], maa.jwks.keys[0]] } })).toBe('INVALID_ARGUMENT');
    expect(await bothCodes(sgxToken, { ...opts, jwks: '{"keys": [' })).toBe('INVALID_ARGUMENT');
    expect(await bothCodes(sgxToken, { ...opts, jwks: { keys: [{ kid: maa.kid, kty: 'RSA', x5c: ['not base64!'] }] } })).toBe('INVALID_ARGUMENT');
    expect(await bothCodes(sgxToken, { ...opts, jwks: { keys: [{ kid: maa.kid, kty: 'EC', x5c: [maa.certDerB64] }] } })).toBe('INVALID_ARGUMENT');
    expect(await bothCodes(sgxToken, { ...opts, jwks: { keys: [{ kid: maa.kid, kty: 'RSA', alg: 'PS256', x5c: [maa.certDerB64] }] } })).toBe(
      'UNSUPPORTED_ALGORITHM',
    );
  });

  it('never takes the key from the token header (jku, x5c, jwk are ignored)', async () => {
    // signed by the attacker, announcing the trusted kid and carrying the attacker's own certificate/key
    const forged = await sign(other, sgxClaims(maa.issuer), {
      kid: maa.kid,
      x5c: [other.certDerB64],
      jwk: other.publicKey.export({ format: 'jwk' }),
      jku: 'https://evil.attest.example.net/certs',
    });
    expect(await bothCodes(forged, opts)).toBe('SIGNATURE_INVALID');
  });

  it('checks the issuer when one is expected', async () => {
    expect((await verifyMaaToken(sgxToken, { ...opts, expectedIssuer: `${maa.issuer}/` })).platform).toBe('maa-sgx');
    expect(await bothCodes(sgxToken, { ...opts, expectedIssuer: 'https://sharedwus.wus.attest.azure.net' })).toBe('UNTRUSTED_ROOT');
    expect(await bothCodes(await sign(maa, sgxClaims(maa.issuer, { iss: undefined })), { ...opts, expectedIssuer: undefined })).toBe(
      'EVIDENCE_MALFORMED',
    );
  });

  it('refuses any algorithm but RS256 (none, HS256 with the public key as secret, PS256) and critical headers', async () => {
    const [h, p] = sgxToken.split('.') as [string, string];
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>;
    const none = `${b64url(JSON.stringify({ ...header, alg: 'none' }))}.${p}.`;
    expect(await bothCodes(none, opts)).toBe('EVIDENCE_MALFORMED'); // empty signature segment
    const none2 = `${b64url(JSON.stringify({ ...header, alg: 'none' }))}.${p}.AAAA`;
    expect(await bothCodes(none2, opts)).toBe('UNSUPPORTED_ALGORITHM');
    const secret = new TextEncoder().encode(`-----BEGIN CERTIFICATE-----\n${maa.certDerB64}\n-----END CERTIFICATE-----\n`);
    const hs = await new SignJWT(sgxClaims(maa.issuer)).setProtectedHeader({ alg: 'HS256', kid: maa.kid }).sign(secret);
    expect(await bothCodes(hs, opts)).toBe('UNSUPPORTED_ALGORITHM');
    const ps = `${b64url(JSON.stringify({ ...header, alg: 'PS256' }))}.${p}.${sgxToken.split('.')[2]}`;
    expect(await bothCodes(ps, opts)).toBe('UNSUPPORTED_ALGORITHM');
    const crit = signRaw(maa, { ...header, crit: ['exp'], exp: 1 }, sgxClaims(maa.issuer));
    expect(await bothCodes(crit, opts)).toBe('EVIDENCE_MALFORMED');
    expect(await bothCodes(await sign(maa, sgxClaims(maa.issuer), { kid: undefined }), opts)).toBe('EVIDENCE_MALFORMED');
  });

  it('fails for every changed character, including non-canonical base64url in the signature', async () => {
    for (const i of mutationPositions(sgxToken, 29)) {
      const code = await asyncCodeOf(() => verifyMaaToken(mutateAt(sgxToken, i), opts));
      expect(['SIGNATURE_INVALID', 'EVIDENCE_MALFORMED', 'UNSUPPORTED_ALGORITHM', 'UNTRUSTED_ROOT', 'UNSUPPORTED_PLATFORM']).toContain(code);
    }
    // RSA-2048: the last signature character has 4 unused bits; setting one must not verify
    const last = sgxToken[sgxToken.length - 1]!;
    const idx = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.indexOf(last);
    const variant = sgxToken.slice(0, -1) + 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'[idx ^ 1];
    expect(await bothCodes(variant, opts)).toBe('EVIDENCE_MALFORMED');
    // and appending / dropping characters
    expect(['SIGNATURE_INVALID', 'EVIDENCE_MALFORMED']).toContain(await bothCodes(sgxToken + 'A', opts));
    expect(['SIGNATURE_INVALID', 'EVIDENCE_MALFORMED']).toContain(await bothCodes(sgxToken.slice(0, -2), opts));
    expect(await bothCodes(sgxToken + '.', opts)).toBe('EVIDENCE_MALFORMED');
  });

  it('maps report data from runtime data when x-ms-sgx-report-data is absent', async () => {
    const t = await sign(maa, sgxClaims(maa.issuer, { 'x-ms-sgx-report-data': undefined }));
    const r = await verifyMaaToken(t, opts);
    expect(r.reportData).toBe(sha256hex(RUNTIME) + '00'.repeat(32));
    expect(r.maa.sgx?.reportDataSource).toBe('runtime-data');
    const unbound = await verifyMaaToken(await sign(maa, sgxClaims(maa.issuer, { 'x-ms-sgx-report-data': '33'.repeat(64) })), opts);
    expect(unbound.reportData).toBe('33'.repeat(64));
    expect(unbound.maa.sgx?.runtimeDataBound).toBe(false);
    const neither = await sign(maa, sgxClaims(maa.issuer, { 'x-ms-sgx-report-data': undefined, 'x-ms-sgx-ehd': undefined }));
    expect(await bothCodes(neither, opts)).toBe('EVIDENCE_MALFORMED');
  });

  it('uses legacy claims when x-ms-* is absent and refuses disagreeing duplicates or bad claim shapes', async () => {
    const legacy = await sign(maa, sgxClaims(maa.issuer, { 'x-ms-sgx-mrenclave': undefined, 'x-ms-sgx-is-debuggable': undefined, 'is-debuggable': true }));
    const r = await verifyMaaToken(legacy, opts);
    expect(r.measurement).toBe(MRENCLAVE);
    expect(r.debug).toBe(true);
    for (const extra of [
      { 'sgx-mrenclave': 'cd'.repeat(32) },
      { 'is-debuggable': true },
      { 'x-ms-sgx-mrenclave': 'aa'.repeat(31) },
      { 'x-ms-sgx-mrenclave': 'zz'.repeat(32), 'sgx-mrenclave': undefined },
      { 'x-ms-sgx-is-debuggable': 'false', 'is-debuggable': undefined },
      { 'x-ms-sgx-svn': -1 },
      { 'x-ms-sgx-svn': 1.5 },
      { 'x-ms-sgx-ehd': 'not base64url!' },
      { 'x-ms-attestation-type': 7 },
      { 'x-ms-attestation-type': undefined },
    ]) {
      expect(await bothCodes(await sign(maa, sgxClaims(maa.issuer, extra)), opts)).toBe('EVIDENCE_MALFORMED');
    }
    expect(await bothCodes(await sign(maa, sgxClaims(maa.issuer, { 'x-ms-attestation-type': 'tdxvm' })), opts)).toBe('UNSUPPORTED_PLATFORM');
    expect(await bothCodes(await sign(maa, sgxClaims(maa.issuer, { 'x-ms-attestation-type': 'azurevm' })), opts)).toBe('UNSUPPORTED_PLATFORM');
    expect(await bothCodes(await sign(maa, snpClaims(maa.issuer, { 'x-ms-sevsnpvm-launchmeasurement': 'cc'.repeat(32) })), opts)).toBe(
      'EVIDENCE_MALFORMED',
    );
    expect(await bothCodes(await sign(maa, snpClaims(maa.issuer, { 'x-ms-sevsnpvm-is-debuggable': undefined })), opts)).toBe('EVIDENCE_MALFORMED');
  });

  it('decodes without verifying for inspection only', () => {
    const d = decodeMaaTokenUnverified(snpToken);
    expect(d.header['kid']).toBe(maa.kid);
    expect(d.claims.platform).toBe('maa-sev-snp');
    expect(d.evidenceDigest).toBe(sha256hex(snpToken));
  });

  it('never throws anything but AttestationError for malformed tokens or options', async () => {
    const inputs: unknown[] = [
      '',
      '.',
      '..',
      'a.b.c',
      'eyJ',
      '{"token": 5}',
      '{"networkCallRecords": []}',
      '{',
      new Uint8Array([0xff, 0xfe, 0x00]),
      new Uint8Array(0),
      sgxToken.slice(0, sgxToken.indexOf('.')),
      sgxToken.replace(/\./g, ''),
      `${b64url('[]')}.${b64url('{}')}.AAAA`,
      `${b64url('{"alg":"RS256","kid":"test-kid="}')}.${b64url('null')}.AAAA`,
      `${b64url('{"alg":"RS256","kid":"test-kid="}')}.${b64url('{}')}.AAAA`,
      `${b64url('{"alg":"RS256","kid":"test-kid="}')}.${b64url('{"iss":"x","exp":1e300,"iat":1}')}.AAAA`,
      5,
      null,
      undefined,
      {},
      'x'.repeat((1 << 20) + 1),
    ];
    for (let i = 0; i < 100; i++) inputs.push(new Uint8Array(randomBytes(1 + (i % 50) * 7)));
    for (let cut = 1; cut < sgxToken.length; cut += 97) inputs.push(sgxToken.slice(0, cut));
    for (const input of inputs) {
      await bothCodes(input as string, opts);
    }
    for (const bad of [null, undefined, 5, {}, { now: 'today', jwks: maa.jwks }, { now: new Date(NaN), jwks: maa.jwks }, { ...opts, expectedIssuer: '' }, { ...opts, maxClockSkewSeconds: -1 }]) {
      expect(await bothCodes(sgxToken, bad as VerifyMaaOptions)).toBe('INVALID_ARGUMENT');
    }
    for (const jwks of [5, 'x', [], { keys: 5 }, { keys: [null, 5, 'x'] }, new Uint8Array([0xff]), { keys: [{ kid: maa.kid }] }]) {
      const code = await bothCodes(sgxToken, { ...opts, jwks });
      expect(['INVALID_ARGUMENT', 'UNTRUSTED_ROOT']).toContain(code);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The published samples (../shared/attestation-samples/maa, SOURCES.md section 3).
// ---------------------------------------------------------------------------------------------

describe.skipIf(!samplesPresent)(`MAA samples${samplesPresent ? '' : ` — SKIPPED: ${samplesAbsentMessage}`}`, () => {
  const SHAREDWUS = 'https://sharedwus.wus.attest.azure.net';
  const IAT_WUS = Date.parse('2022-05-31T22:47:57.000Z');
  const at = new Date(IAT_WUS + 60_000);
  let token: string;
  let jwks: unknown;
  let recording: string;
  let snp: string;

  beforeAll(() => {
    token = sampleText('maa/maa_sharedwus_sgx_token.jwt');
    jwks = JSON.parse(sampleText('maa/maa_sharedwus_certs_jwks.json'));
    recording = sampleText('maa/azsdkcpp_recording_AttestWithRuntimeData-SgxEnclave_Shared.json');
    snp = sampleText('maa/azsamples_sevsnp_token_UNVERIFIABLE.jwt');
  });

  it('maa_sharedwus_sgx_token.jwt verifies at iat+60s with the fields SOURCES.md gives', async () => {
    const r = await verifyMaaToken(token, { now: at, jwks, expectedIssuer: SHAREDWUS });
    expect(r.platform).toBe('maa-sgx');
    expect(r.measurement).toBe('292a1f4b519e46627eb2478a3d9851405653c5b4b0a6925de843834d9216850e');
    expect(r.reportData).toBe('28542e44fe7e73f6610f6b31ae7576925f09ccdbb4c5646583ecc1561337a8ff' + '00'.repeat(32));
    expect(r.debug).toBe(true);
    expect(r.tcb).toEqual({ components: { isvSvn: 1 }, raw: '' });
    expect(r.signingKey).toBe('maa');
    expect(r.issuedAt).toBe('2022-05-31T22:47:57.000Z');
    expect(r.validity).toEqual({ notBefore: '2022-05-31T22:47:57.000Z', notAfter: '2022-06-01T06:47:57.000Z' });
    expect(r.evidenceDigest).toBe(sha256hex(token.trim()));
    expect(r.hostData).toBeUndefined();
    expect(r.chipId).toBeUndefined();
    expect(r.maa).toMatchObject({
      issuer: SHAREDWUS,
      attestationType: 'sgx',
      kid: 'XxRc2vLh1E5FrsNawnRH3PzuFgqg3q7NvCdnjoJHBGE=',
      version: '1.0',
      expiresAt: '2022-06-01T06:47:57.000Z',
      sgx: {
        mrsigner: '4aea5f9a0ed04b11f889aadfe6a1d376213a29a95a85ce7337ae6f7fece6610c',
        productId: 1,
        svn: 1,
        reportDataSource: 'x-ms-sgx-report-data',
        runtimeDataBound: true, // report-data[0:32] == SHA-256(x-ms-sgx-ehd), as SOURCES.md verified
      },
    });
    // the signing key: x5c[0] of the kid's entry; kid = base64(SHA-256(SPKI PEM + "\0")) (FORMATS.md §3)
    const entry = (jwks as { keys: Array<{ kid: string; x5c: string[] }> }).keys.find((k) => k.kid === r.maa.kid)!;
    const key = createPublicKey(`-----BEGIN CERTIFICATE-----\n${entry.x5c[0]}\n-----END CERTIFICATE-----\n`);
    expect(r.rootKeyId).toBe(sha256hex(key.export({ type: 'spki', format: 'der' })));
    const pem = key.export({ type: 'spki', format: 'pem' }).toString();
    expect(createHash('sha256').update(pem + '\0').digest('base64')).toBe(r.maa.kid);
    expect(verifyMaaTokenSync(token, { now: at, jwks, expectedIssuer: SHAREDWUS })).toEqual(r);
  });

  it('is expired at the current time, and not yet valid before its iat', async () => {
    expect(await bothCodes(token, { now: new Date(), jwks })).toBe('EVIDENCE_EXPIRED');
    expect(await bothCodes(token, { now: new Date(IAT_WUS - 60_000), jwks })).toBe('EVIDENCE_NOT_YET_VALID');
  });

  it('the Azure SDK recording verifies to the same result (token from the attest response, key set from /certs)', async () => {
    const want = await verifyMaaToken(token, { now: at, jwks });
    expect(await verifyMaaToken(recording, { now: at, jwks: recording })).toEqual(want);
    expect(await verifyMaaToken(sample('maa/azsdkcpp_recording_AttestWithRuntimeData-SgxEnclave_Shared.json'), { now: at, jwks })).toEqual(want);
    expect(extractMaaToken(recording)).toBe(token.trim());
  });

  it('fails for changed characters anywhere in the token', async () => {
    for (const i of mutationPositions(token, 41)) {
      const code = await asyncCodeOf(() => verifyMaaToken(mutateAt(token, i), { now: at, jwks }));
      expect(['SIGNATURE_INVALID', 'EVIDENCE_MALFORMED', 'UNSUPPORTED_ALGORITHM', 'UNTRUSTED_ROOT', 'UNSUPPORTED_PLATFORM']).toContain(code);
    }
  });

  it('fails with the wrong key set', async () => {
    const stranger = await makeIssuer(SHAREDWUS, 'XxRc2vLh1E5FrsNawnRH3PzuFgqg3q7NvCdnjoJHBGE=');
    expect(await bothCodes(token, { now: at, jwks: stranger.jwks })).toBe('SIGNATURE_INVALID');
    const others = { keys: (jwks as { keys: Array<{ kid: string }> }).keys.filter((k) => k.kid !== 'XxRc2vLh1E5FrsNawnRH3PzuFgqg3q7NvCdnjoJHBGE=') };
    expect(await bothCodes(token, { now: at, jwks: others })).toBe('UNTRUSTED_ROOT');
    expect(await bothCodes(token, { now: at, jwks, expectedIssuer: 'https://sharedeus.eus.attest.azure.net' })).toBe('UNTRUSTED_ROOT');
  });

  it('azsamples_sevsnp_token_UNVERIFIABLE.jwt fails: its signing key is not in any key set we have', async () => {
    const iat = new Date('2025-04-08T04:16:00.000Z');
    expect(await bothCodes(snp, { now: iat, jwks })).toBe('UNTRUSTED_ROOT');
    expect(await bothCodes(snp, { now: iat, jwks: undefined })).toBe('COLLATERAL_MISSING');
    expect(await bothCodes(snp, { now: iat, jwks: { keys: [] } })).toBe('UNTRUSTED_ROOT');
  });

  it('the SEV-SNP sample claims map to the SOURCES.md fields (decoded unverified; re-signed by a test key they verify)', async () => {
    const d = decodeMaaTokenUnverified(snp);
    const expected = {
      platform: 'maa-sev-snp',
      measurement: '02c3b0d5bf1d256fa4e3b5deefc07b55ff2f7029085ed350f60959140a1a51f1310753ba5ab2c03a0536b1c0c193af47',
      hostData: '73973b78d70cc68353426de188db5dfc57e5b766e399935fb73a61127ea26d20',
      reportData: '40fc248ecb5500000000000000000000000000000000000031000000000000000000000000000000000000000000000000000000000000000000000000000000',
      debug: false,
      tcb: { components: { bootloader: 3, tee: 0, snp: 8, microcode: 115, guestSvn: 2 }, raw: '' },
    };
    expect(d.claims).toMatchObject({ ...expected, issuer: 'https://sharedweu.weu.test.attest.azure.net' });
    expect(d.header['kid']).toBe('jNolL7YTrRkDIukgm3on/fz5uMi9kjxhfUBTh6Or8No=');
    expect(new Date(d.claims.iat * 1000).toISOString()).toBe('2025-04-08T04:15:00.000Z');
    expect(d.claims.summary.sevSnp).toMatchObject({ vmpl: 0, migrationAllowed: false, smtAllowed: true, familyId: '01' + '00'.repeat(15) });

    const test = await makeIssuer('https://sharedweu.weu.test.attest.azure.net', 'resigned');
    const resigned = await sign(test, d.payload as Record<string, unknown>);
    const r = await verifyMaaToken(resigned, { now: new Date('2025-04-08T04:16:00.000Z'), jwks: test.jwks });
    expect(r).toMatchObject({ ...expected, signingKey: 'maa', issuedAt: '2025-04-08T04:15:00.000Z' });
  });
});
