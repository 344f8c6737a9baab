import { describe, expect, it } from 'vitest';
import { createVirtualEvidence, generateVirtualRoot, reportDataFor } from '../../../attestation/index.js';
import { generateEd25519KeyPair } from '../../../consensus/index.js';
import { releaseFreshness } from '../../../contracts/index.js';
import {
  AdmissionError,
  admissionFreshness,
  encodeAnswerError,
  encodeChallenge,
  evaluateAdmission,
  parseAnswer,
  parseChallenge,
  type AdmissionClaim,
} from '../../../node/admission/index.js';
import { ConcurrencyLimit } from '../../../node/admission/concurrency-limit.js';
import { TokenBuckets } from '../../../node/admission/token-buckets.js';
import { buildGenesis } from '../../../node/genesis/build-genesis.js';

const root = generateVirtualRoot();
const otherRoot = generateVirtualRoot();
const M = '5a'.repeat(48);
const now = new Date('2026-11-01T00:00:00Z');
const vote = generateEd25519KeyPair().publicKey;
const genesis = buildGenesis({
  chainId: 'consortium-1',
  time: 0,
  members: [{ id: 'hospital-a', publicKey: generateEd25519KeyPair().publicKey }],
  nodes: [
    { nodeId: 'node-a', voteKey: vote },
    { nodeId: 'node-b', voteKey: generateEd25519KeyPair().publicKey },
  ],
  measurements: { virtual: [M] },
  virtualRoots: [root.publicKeyPem],
  contracts: [],
});

function claimFor(
  nodeId: string,
  opts: { boundTo?: string; freshness?: string; measurement?: string; rootKey?: string; chainId?: string; voteKey?: string } = {},
): AdmissionClaim {
  const publicKeys = { vote: opts.voteKey ?? vote };
  const reportData = reportDataFor({
    publicKeys,
    chainId: opts.chainId ?? genesis.chainId,
    nodeId: opts.boundTo ?? nodeId,
    freshness: opts.freshness ?? 'challenge-1',
  });
  const evidence = createVirtualEvidence({
    rootPrivateKeyPem: opts.rootKey ?? root.privateKeyPem,
    measurement: Buffer.from(opts.measurement ?? M, 'hex'),
    reportData,
  });
  return { nodeId, publicKeys, evidence: Buffer.from(evidence).toString('base64') };
}

const ctx = { genesis, authenticatedNodeId: 'node-a', freshness: 'challenge-1', now };

describe('admission by attestation', () => {
  it('admits a validator whose evidence verifies, binds its keys and passes the policy', () => {
    const decision = evaluateAdmission(claimFor('node-a'), ctx);
    expect(decision).toMatchObject({ nodeId: 'node-a', admitted: true, platform: 'virtual', measurement: M, publicKeys: { vote } });
  });

  it('refuses a measurement not in the allowed set, naming it', () => {
    const other = '77'.repeat(48);
    const decision = evaluateAdmission(claimFor('node-a', { measurement: other }), ctx);
    expect(decision.admitted).toBe(false);
    expect(decision.reason?.code).toBe('MEASUREMENT_NOT_ALLOWED');
    expect(decision.reason?.message).toContain(other);
    expect(decision.measurement).toBe(other);
  });

  it("refuses evidence bound to another node's identity, another chain or an old challenge", () => {
    expect(evaluateAdmission(claimFor('node-a', { boundTo: 'node-b' }), ctx).reason?.code).toBe('REPORT_DATA_MISMATCH');
    expect(evaluateAdmission(claimFor('node-a', { chainId: 'other-chain' }), ctx).reason?.code).toBe('REPORT_DATA_MISMATCH');
    expect(evaluateAdmission(claimFor('node-a', { freshness: 'challenge-0' }), ctx).reason?.code).toBe('REPORT_DATA_MISMATCH');
  });

  it('refuses an attested enclave whose vote key is not the one the genesis lists for the node', () => {
    const stranger = generateEd25519KeyPair().publicKey;
    const decision = evaluateAdmission(claimFor('node-a', { voteKey: stranger }), ctx);
    expect(decision).toMatchObject({ admitted: false, measurement: M, reason: { code: 'KEY_MISMATCH' } });
    expect(decision.reason!.message).toContain(stranger);
  });

  it('refuses a claim made for another node than the connection, and nodes outside the genesis', () => {
    // The decision is about the authenticated peer, whatever node the claim names.
    expect(evaluateAdmission(claimFor('node-b'), ctx)).toMatchObject({ nodeId: 'node-a', admitted: false, reason: { code: 'NODE_MISMATCH' } });
    expect(evaluateAdmission(claimFor('node-x'), { ...ctx, authenticatedNodeId: 'node-x' }).reason?.code).toBe('NOT_A_VALIDATOR');
  });

  it('refuses forged evidence: an undeclared root, or a changed byte', () => {
    expect(evaluateAdmission(claimFor('node-a', { rootKey: otherRoot.privateKeyPem }), ctx).reason?.code).toBe('UNTRUSTED_ROOT');
    const good = claimFor('node-a');
    const bytes = Buffer.from(good.evidence, 'base64');
    const text = bytes.toString('utf8');
    const at = text.indexOf('"report":"') + 50;
    bytes[at] = bytes[at] === 0x41 ? 0x42 : 0x41;
    const tampered = evaluateAdmission({ ...good, evidence: bytes.toString('base64') }, ctx);
    expect(tampered.admitted).toBe(false);
    expect(['SIGNATURE_INVALID', 'EVIDENCE_MALFORMED']).toContain(tampered.reason?.code);
  });

  it('refuses virtual evidence when the policy does not allow it', () => {
    const strict = { ...genesis, policy: { allowedPlatforms: ['sev-snp'], measurements: { 'sev-snp': [M] } } } as typeof genesis;
    const decision = evaluateAdmission(claimFor('node-a'), { ...ctx, genesis: strict });
    expect(decision.admitted).toBe(false);
    expect(['PLATFORM_NOT_ALLOWED', 'VIRTUAL_NOT_ALLOWED']).toContain(decision.reason?.code);
  });

  it.each([
    ['null', null],
    ['a string', 'hello'],
    ['no keys', { nodeId: 'node-a', publicKeys: {}, evidence: 'AAAA' }],
    ['a bad key', { nodeId: 'node-a', publicKeys: { vote: 'xyz' }, evidence: 'AAAA' }],
    ['no evidence', { nodeId: 'node-a', publicKeys: { vote } }],
    ['garbage evidence', { nodeId: 'node-a', publicKeys: { vote }, evidence: Buffer.from('garbage').toString('base64') }],
  ])('refuses %s with a code and never throws', (_, claim) => {
    const decision = evaluateAdmission(claim, ctx);
    expect(decision.admitted).toBe(false);
    expect(decision.reason?.code).toBeTruthy();
  });
});

describe('admission protocol messages', () => {
  it("reads a challenge of 1 to 128 characters with the challenger's genesis hash, and nothing else", () => {
    const g = 'ab'.repeat(32);
    expect(parseChallenge(encodeChallenge('abc', g))).toEqual({ challenge: 'abc', genesis: g });
    for (const bad of ['', 'x'.repeat(129)]) expect(parseChallenge(encodeChallenge(bad, g))).toBeUndefined();
    for (const badGenesis of ['', 'AB'.repeat(32), 'ab'.repeat(31), 'ab'.repeat(33)]) expect(parseChallenge(encodeChallenge('abc', badGenesis))).toBeUndefined();
    for (const raw of ['not json', '[]', 'null', '{"challenge":42}', '{}', '{"challenge":"abc"}', `{"genesis":"${g}"}`]) {
      expect(parseChallenge(new TextEncoder().encode(raw)), raw).toBeUndefined();
    }
    expect(parseChallenge(new Uint8Array([0xff, 0xfe]))).toBeUndefined();
  });

  it('binds an admission answer to the genesis and the challenge, never one without the other', () => {
    const g = 'ab'.repeat(32);
    expect(admissionFreshness(g, 'c1')).toBe(`cloister/admission/v1:${g}:c1`);
    expect(admissionFreshness(g, 'c1')).not.toBe(admissionFreshness('cd'.repeat(32), 'c1'));
    // Not the secret release's: evidence made for one purpose never answers the other.
    expect(admissionFreshness(g, 'c1')).not.toBe(releaseFreshness(g, 'c1'));
  });

  it('tells a typed refusal to answer from a claim; everything else is a claim for evaluateAdmission to judge', () => {
    const refusal = parseAnswer(encodeAnswerError(new AdmissionError('RATE_LIMITED', 'too many', 20_000)));
    expect(refusal).toEqual({ error: expect.objectContaining({ code: 'RATE_LIMITED', retryAfterMs: 20_000 }) });
    expect('error' in refusal && refusal.error).toBeInstanceOf(AdmissionError);
    const unknown = parseAnswer(new TextEncoder().encode('{"error":{"code":"SOMETHING_NEW","message":"m","retryAfterMs":-5}}'));
    expect(unknown).toEqual({ error: expect.objectContaining({ code: 'DECLINED', retryAfterMs: undefined }) });
    const claim = { nodeId: 'node-a', publicKeys: { vote }, evidence: 'QUFB' };
    expect(parseAnswer(new TextEncoder().encode(JSON.stringify(claim)))).toEqual({ claim });
    // An untyped error (older or hostile peers) is not a refusal to answer: it is judged as a (malformed) claim.
    expect(parseAnswer(new TextEncoder().encode('{"error":"no"}'))).toEqual({ claim: { error: 'no' } });
    expect(parseAnswer(new TextEncoder().encode('garbage'))).toEqual({ claim: undefined });
  });
});

describe('admission work limits', () => {
  it('a token bucket per key: a burst, then one token per refill interval, with the wait until the next', () => {
    const buckets = new TokenBuckets({ capacity: 3, refillPerMs: 1 / 1000 });
    const t = 1_000_000;
    expect([1, 2, 3].map(() => buckets.take('p', t).ok)).toEqual([true, true, true]);
    expect(buckets.take('p', t)).toEqual({ ok: false, retryAfterMs: 1000 });
    expect(buckets.take('q', t).ok).toBe(true); // another peer has its own bucket
    expect(buckets.take('p', t + 400)).toEqual({ ok: false, retryAfterMs: 600 });
    expect(buckets.take('p', t + 1000).ok).toBe(true);
    expect(buckets.take('p', t + 1000).ok).toBe(false);
    // Refills to the capacity, not beyond; a clock that goes back takes nothing away.
    expect([1, 2, 3, 4].map(() => buckets.take('p', t + 60_000).ok)).toEqual([true, true, true, false]);
    expect(buckets.take('p', t).ok).toBe(false);
  });

  it('runs at most N tasks at once, queues M more, refuses the rest; a failing task frees its slot', async () => {
    const limit = new ConcurrencyLimit(1, 1);
    const release: (() => void)[] = [];
    const task = (value: number) => () => new Promise<number>((resolve) => release.push(() => resolve(value)));
    const first = limit.run(task(1));
    const second = limit.run(task(2));
    expect(await limit.run(task(3))).toBeUndefined();
    expect([limit.running, limit.queued]).toEqual([1, 1]);
    release.shift()!();
    expect(await first).toEqual({ value: 1 });
    await new Promise((r) => setImmediate(r));
    release.shift()!();
    expect(await second).toEqual({ value: 2 });
    await expect(limit.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect([limit.running, limit.queued]).toEqual([0, 0]);
  });
});
