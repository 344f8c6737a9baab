import { KeyObject, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign as nodeSign } from 'node:crypto';
import { SignJWT, generateKeyPair } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AttestationError,
  createVirtualEvidence,
  generateVirtualRoot,
  reportDataFor,
  verifyVirtualEvidence,
  virtualMeasurement,
  type AttestationResult,
} from '../../../attestation/index.js';
import {
  ATTESTATION_TOKEN_TYPE,
  MAX_TOKEN_TTL_SECONDS,
  decodeAttestationTokenUnverified,
  issueAttestationToken,
  verifyAttestationToken,
  type AttestationTokenClaims,
  type IssueAttestationTokenOptions,
  type VerifyAttestationTokenOptions,
} from '../../../attestation/token/index.js';

async function asyncCodeOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AttestationError);
    return (err as AttestationError).code;
  }
  throw new Error('expected an AttestationError, nothing was thrown');
}

const b64url = (data: string | Uint8Array): string => Buffer.from(data).toString('base64url');
const now = new Date('2026-03-01T12:00:00Z');
const NOW_S = Math.floor(now.getTime() / 1000);
const binding = { chainId: 'cloister-test', nodeId: 'node-1', freshness: 'nonce-42' };

/** An enclave: Ed25519 seed + public key (raw hex), and its verified virtual evidence binding that key. */
interface Enclave {
  seed: Uint8Array;
  publicHex: string;
  publicKeys: Record<string, string>;
  evidence: AttestationResult;
}

const root = generateVirtualRoot();

function rawPublic(key: KeyObject): string {
  return Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x!, 'base64url').toString('hex');
}

function makeEnclave(program = 'enclave v1', debug = false): Enclave {
  const { privateKey } = generateKeyPairSync('ed25519');
  const seed = new Uint8Array(privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(16));
  const publicHex = rawPublic(privateKey);
  const publicKeys = { vote: publicHex, encryption: 'ab'.repeat(32) };
  const reportData = reportDataFor({ publicKeys, ...binding });
  const ev = createVirtualEvidence({
    rootPrivateKeyPem: root.privateKeyPem,
    measurement: virtualMeasurement(new TextEncoder().encode(program)),
    reportData,
    debug,
    tcb: { bootloader: 3, tee: 0, snp: 8, microcode: 115 },
  });
  return { seed, publicHex, publicKeys, evidence: verifyVirtualEvidence(ev, { trustedRoots: [root.publicKeyPem], now }) };
}

function issueOptions(e: Enclave, extra: Partial<IssueAttestationTokenOptions> = {}): IssueAttestationTokenOptions {
  return {
    signingKey: e.seed,
    claims: { ...e.evidence, publicKeys: e.publicKeys },
    evidenceDigest: e.evidence.evidenceDigest,
    issuer: 'node-1',
    audience: 'rpc-client',
    now,
    ...extra,
  };
}

function verifyOptions(e: Enclave, extra: Partial<VerifyAttestationTokenOptions> = {}): VerifyAttestationTokenOptions {
  return { evidenceResult: e.evidence, publicKey: e.publicHex, now, audience: 'rpc-client', binding, ...extra };
}

/** The enclave's private key from its raw seed (PKCS#8 wrapping). */
function seedKey(seed: Uint8Array): KeyObject {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

/** Signs an arbitrary header/payload with the enclave key (to build tokens issueAttestationToken would refuse to make). */
function signRaw(e: Enclave, header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  return `${input}.${b64url(nodeSign(null, Buffer.from(input), seedKey(e.seed)))}`;
}

describe('attestation tokens', () => {
  let e: Enclave;
  let token: string;

  beforeAll(async () => {
    e = makeEnclave();
    token = await issueAttestationToken(issueOptions(e));
  });

  it('round-trips: issue with the enclave seed, verify with the evidence and the bound key', async () => {
    const claims = await verifyAttestationToken(token, verifyOptions(e));
    expect(claims).toEqual<AttestationTokenClaims>({
      issuer: 'node-1',
      audience: 'rpc-client',
      issuedAt: '2026-03-01T12:00:00.000Z',
      notBefore: '2026-03-01T12:00:00.000Z',
      expiresAt: '2026-03-01T12:05:00.000Z',
      platform: 'virtual',
      measurement: e.evidence.measurement,
      reportData: e.evidence.reportData,
      hostData: '00'.repeat(32), // virtual evidence reports SNP HOST_DATA (zero here)
      debug: false,
      tcb: JSON.parse(JSON.stringify(e.evidence.tcb)) as AttestationTokenClaims['tcb'],
      publicKeys: e.publicKeys,
      evidenceDigest: e.evidence.evidenceDigest,
      keyId: e.publicHex,
    });
    expect(Object.isFrozen(claims)).toBe(true);
  });

  it('has the documented header and claim names', () => {
    const { header, payload } = decodeAttestationTokenUnverified(token);
    expect(header).toEqual({ alg: 'EdDSA', typ: ATTESTATION_TOKEN_TYPE, kid: e.publicHex });
    expect(Object.keys(payload).sort()).toEqual(
      ['ver', 'iss', 'aud', 'iat', 'nbf', 'exp', 'platform', 'measurement', 'report_data', 'host_data', 'debug', 'tcb', 'public_keys', 'evidence_digest'].sort(),
    );
    expect(payload['ver']).toBe(1);
    expect(payload['exp']).toBe(NOW_S + 300);
  });

  it('accepts the signing key as a KeyObject, a jose CryptoKey, or hex seed; the public key likewise', async () => {
    const priv = seedKey(e.seed);
    const viaKeyObject = await issueAttestationToken(issueOptions(e, { signingKey: priv }));
    const viaHex = await issueAttestationToken(issueOptions(e, { signingKey: Buffer.from(e.seed).toString('hex') }));
    expect(viaKeyObject).toBe(token); // Ed25519 is deterministic
    expect(viaHex).toBe(token);
    const pub = createPublicKey(priv);
    expect((await verifyAttestationToken(token, verifyOptions(e, { publicKey: pub }))).keyId).toBe(e.publicHex);
    expect((await verifyAttestationToken(token, verifyOptions(e, { publicKey: Buffer.from(e.publicHex, 'hex') }))).keyId).toBe(e.publicHex);

    const jp = await generateKeyPair('EdDSA', { crv: 'Ed25519' }); // non-extractable, as jose makes it
    const jpHex = rawPublic(KeyObject.from(jp.privateKey));
    const e2: Enclave = { ...e, publicHex: jpHex, publicKeys: { vote: jpHex } };
    const t = await issueAttestationToken({ ...issueOptions(e2), signingKey: jp.privateKey });
    // (no binding: this evidence binds e's keys, not jp's)
    const c = await verifyAttestationToken(t, { ...verifyOptions(e2), publicKey: jp.publicKey, binding: undefined });
    expect(c.keyId).toBe(jpHex);
  });

  it('fails with the wrong key, a tampered token, or a foreign algorithm', async () => {
    const other = makeEnclave();
    expect(await asyncCodeOf(() => verifyAttestationToken(token, verifyOptions(e, { publicKey: other.publicHex })))).toBe('SIGNATURE_INVALID');
    const [h, p, s] = token.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${b64url(JSON.stringify({ ...payload, debug: true }))}.${s}`;
    expect(await asyncCodeOf(() => verifyAttestationToken(forged, verifyOptions(e)))).toBe('SIGNATURE_INVALID');
    for (let i = 0; i < token.length; i += 13) {
      const c = token[i] === 'A' ? 'B' : token[i] === '.' ? 'A' : 'A';
      const mutated = token.slice(0, i) + c + token.slice(i + 1);
      const code = await asyncCodeOf(() => verifyAttestationToken(mutated, verifyOptions(e)));
      expect(['SIGNATURE_INVALID', 'EVIDENCE_MALFORMED', 'UNSUPPORTED_ALGORITHM']).toContain(code);
    }
    const none = `${b64url(JSON.stringify({ alg: 'none', typ: ATTESTATION_TOKEN_TYPE }))}.${p}.AAAA`;
    expect(await asyncCodeOf(() => verifyAttestationToken(none, verifyOptions(e)))).toBe('UNSUPPORTED_ALGORITHM');
    const hs = await new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: ATTESTATION_TOKEN_TYPE }).sign(Buffer.from(e.publicHex, 'hex'));
    expect(await asyncCodeOf(() => verifyAttestationToken(hs, verifyOptions(e)))).toBe('UNSUPPORTED_ALGORITHM');
    // right key, wrong type: a JWT the enclave signed for something else
    const untyped = signRaw(e, { alg: 'EdDSA', typ: 'JWT' }, payload);
    expect(await asyncCodeOf(() => verifyAttestationToken(untyped, verifyOptions(e)))).toBe('EVIDENCE_MALFORMED');
  });

  it('fails when expired or not yet valid, and passes inside the validity', async () => {
    expect(await asyncCodeOf(() => verifyAttestationToken(token, verifyOptions(e, { now: new Date((NOW_S + 300) * 1000) })))).toBe('EVIDENCE_EXPIRED');
    expect(await asyncCodeOf(() => verifyAttestationToken(token, verifyOptions(e, { now: new Date('2027-01-01T00:00:00Z') })))).toBe(
      'EVIDENCE_EXPIRED',
    );
    expect(await asyncCodeOf(() => verifyAttestationToken(token, verifyOptions(e, { now: new Date((NOW_S - 10) * 1000) })))).toBe(
      'EVIDENCE_NOT_YET_VALID',
    );
    expect((await verifyAttestationToken(token, verifyOptions(e, { now: new Date((NOW_S - 10) * 1000), maxClockSkewSeconds: 30 }))).issuer).toBe('node-1');
    expect((await verifyAttestationToken(token, verifyOptions(e, { now: new Date((NOW_S + 299) * 1000) }))).issuer).toBe('node-1');
  });

  it('enforces the maximum lifetime at issuance and at verification', async () => {
    expect(await asyncCodeOf(() => issueAttestationToken(issueOptions(e, { ttlSeconds: MAX_TOKEN_TTL_SECONDS + 1 })))).toBe('INVALID_ARGUMENT');
    expect(await asyncCodeOf(() => issueAttestationToken(issueOptions(e, { ttlSeconds: 0 })))).toBe('INVALID_ARGUMENT');
    const hour = await issueAttestationToken(issueOptions(e, { ttlSeconds: 3600 }));
    expect((await verifyAttestationToken(hour, verifyOptions(e))).expiresAt).toBe('2026-03-01T13:00:00.000Z');
    expect(await asyncCodeOf(() => verifyAttestationToken(hour, verifyOptions(e, { maxLifetimeSeconds: 600 })))).toBe('EVIDENCE_MALFORMED');
    // a token made by hand with a day of lifetime
    const { payload } = decodeAttestationTokenUnverified(token);
    const long = signRaw(e, { alg: 'EdDSA', typ: ATTESTATION_TOKEN_TYPE, kid: e.publicHex }, { ...payload, exp: NOW_S + 86400 });
    expect(await asyncCodeOf(() => verifyAttestationToken(long, verifyOptions(e)))).toBe('EVIDENCE_MALFORMED');
    const backwards = signRaw(e, { alg: 'EdDSA', typ: ATTESTATION_TOKEN_TYPE }, { ...payload, exp: NOW_S - 1 });
    expect(await asyncCodeOf(() => verifyAttestationToken(backwards, verifyOptions(e)))).toBe('EVIDENCE_MALFORMED');
  });

  it('fails when the token does not speak for the given evidence', async () => {
    // evidence of another enclave (other digest, other measurement)
    const other = makeEnclave('enclave v2');
    const code = await asyncCodeOf(() => verifyAttestationToken(token, verifyOptions(e, { evidenceResult: other.evidence })));
    expect(code).toBe('REPORT_DATA_MISMATCH');
    // same evidence fields, other digest
    const digestOnly = { ...e.evidence, evidenceDigest: 'cd'.repeat(32) };
    const err = await verifyAttestationToken(token, verifyOptions(e, { evidenceResult: digestOnly })).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(AttestationError);
    expect((err as AttestationError).code).toBe('REPORT_DATA_MISMATCH');
    expect((err as AttestationError).details?.['claim']).toBe('evidence_digest');
    for (const [claim, changed] of [
      ['measurement', { measurement: 'ee'.repeat(48) }],
      ['platform', { platform: 'sev-snp' }],
      ['report_data', { reportData: '00'.repeat(64) }],
      ['debug', { debug: true }],
      ['host_data', { hostData: '11'.repeat(32) }],
      ['tcb', { tcb: { ...e.evidence.tcb, components: { ...e.evidence.tcb.components, snp: 1 } } }],
    ] as const) {
      const x = await verifyAttestationToken(token, verifyOptions(e, { evidenceResult: { ...e.evidence, ...changed } as AttestationResult })).catch(
        (y: unknown) => y,
      );
      expect((x as AttestationError).code).toBe('REPORT_DATA_MISMATCH');
      expect((x as AttestationError).details?.['claim']).toBe(claim);
    }
  });

  it('checks the binding: report_data must bind exactly the token public keys for this chain/node/freshness', async () => {
    expect(await asyncCodeOf(() => verifyAttestationToken(token, verifyOptions(e, { binding: { ...binding, freshness: 'other' } })))).toBe(
      'REPORT_DATA_MISMATCH',
    );
    expect(await asyncCodeOf(() => verifyAttestationToken(token, verifyOptions(e, { binding: { ...binding, chainId: 'other-chain' } })))).toBe(
      'REPORT_DATA_MISMATCH',
    );
    // a token claiming an extra public key: signed correctly, but report_data does not bind that key set
    const t = await issueAttestationToken(issueOptions(e, { claims: { ...e.evidence, publicKeys: { ...e.publicKeys, extra: 'ff'.repeat(32) } } }));
    expect(await asyncCodeOf(() => verifyAttestationToken(t, verifyOptions(e)))).toBe('REPORT_DATA_MISMATCH');
    expect((await verifyAttestationToken(t, verifyOptions(e, { binding: undefined }))).publicKeys['extra']).toBe('ff'.repeat(32));
    // the signing key must be among the public keys (refused at issuance; a hand-made one is refused at verification)
    expect(await asyncCodeOf(() => issueAttestationToken(issueOptions(e, { claims: { ...e.evidence, publicKeys: { vote: 'ff'.repeat(32) } } })))).toBe(
      'INVALID_ARGUMENT',
    );
    const { payload } = decodeAttestationTokenUnverified(token);
    const foreign = signRaw(e, { alg: 'EdDSA', typ: ATTESTATION_TOKEN_TYPE }, { ...payload, public_keys: { vote: 'ff'.repeat(32) } });
    expect(await asyncCodeOf(() => verifyAttestationToken(foreign, verifyOptions(e, { binding: undefined })))).toBe('REPORT_DATA_MISMATCH');
  });

  it('checks audience and issuer', async () => {
    expect(await asyncCodeOf(() => verifyAttestationToken(token, verifyOptions(e, { audience: 'someone-else' })))).toBe('REPORT_DATA_MISMATCH');
    expect(await asyncCodeOf(() => verifyAttestationToken(token, verifyOptions(e, { audience: undefined })))).toBe('REPORT_DATA_MISMATCH');
    const noAud = await issueAttestationToken(issueOptions(e, { audience: undefined }));
    expect((await verifyAttestationToken(noAud, verifyOptions(e, { audience: undefined }))).audience).toBeUndefined();
    expect(await asyncCodeOf(() => verifyAttestationToken(noAud, verifyOptions(e)))).toBe('REPORT_DATA_MISMATCH');
    expect((await verifyAttestationToken(token, verifyOptions(e, { issuer: 'node-1' }))).issuer).toBe('node-1');
    expect(await asyncCodeOf(() => verifyAttestationToken(token, verifyOptions(e, { issuer: 'node-2' })))).toBe('UNTRUSTED_ROOT');
  });

  it('carries host data and debug when the evidence has them', async () => {
    const d = makeEnclave('debug build', true);
    const t = await issueAttestationToken(issueOptions(d));
    const c = await verifyAttestationToken(t, verifyOptions(d));
    expect(c.debug).toBe(true);
    expect(c.hostData).toBe(d.evidence.hostData);
  });

  it('never throws anything but AttestationError for malformed tokens, keys or options', async () => {
    const inputs: unknown[] = ['', '.', '..', 'a.b.c', token + '.', token.slice(0, -1), 5, null, {}, new Uint8Array([0xff, 0, 1]), 'x'.repeat(70_000)];
    for (let i = 0; i < 50; i++) inputs.push(new Uint8Array(randomBytes(1 + i * 5)));
    for (const input of inputs) await asyncCodeOf(() => verifyAttestationToken(input as string, verifyOptions(e)));
    expect((await verifyAttestationToken(new TextEncoder().encode(token), verifyOptions(e))).issuer).toBe('node-1');
    for (const bad of [
      null,
      {},
      verifyOptions(e, { now: new Date(NaN) }),
      verifyOptions(e, { publicKey: 'abcd' }),
      verifyOptions(e, { publicKey: 5 as never }),
      verifyOptions(e, { publicKey: seedKey(e.seed).export({ format: 'der', type: 'pkcs8' }) as never }),
      verifyOptions(e, { publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey }),
      verifyOptions(e, { evidenceResult: null as never }),
      verifyOptions(e, { maxLifetimeSeconds: -1 }),
      verifyOptions(e, { audience: '' }),
      verifyOptions(e, { binding: 5 as never }),
    ]) {
      expect(await asyncCodeOf(() => verifyAttestationToken(token, bad as VerifyAttestationTokenOptions))).toBe('INVALID_ARGUMENT');
    }
    for (const bad of [
      null,
      issueOptions(e, { signingKey: new Uint8Array(31) }),
      issueOptions(e, { signingKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }),
      issueOptions(e, { signingKey: createPublicKey(seedKey(e.seed)) }),
      issueOptions(e, { evidenceDigest: 'xyz' }),
      issueOptions(e, { issuer: '' }),
      issueOptions(e, { now: 'now' as never }),
      issueOptions(e, { claims: { ...e.evidence, publicKeys: {} } }),
      issueOptions(e, { claims: { ...e.evidence, measurement: 'aa', publicKeys: e.publicKeys } }),
      issueOptions(e, { claims: { ...e.evidence, platform: 'tpm' as never, publicKeys: e.publicKeys } }),
      issueOptions(e, { claims: { ...e.evidence, tcb: { components: { a: -1 }, raw: '' }, publicKeys: e.publicKeys } }),
    ]) {
      expect(await asyncCodeOf(() => issueAttestationToken(bad as IssueAttestationTokenOptions))).toBe('INVALID_ARGUMENT');
    }
  });
});
