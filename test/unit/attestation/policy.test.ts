import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  AttestationError,
  canonicalPolicy,
  createVirtualEvidence,
  enforcePolicy,
  evaluatePolicy,
  generateVirtualRoot,
  normalizePolicy,
  policyHash,
  verifyVirtualEvidence,
  type AttestationPolicy,
  type AttestationResult,
  type PolicyDecision,
} from '../../../attestation/index.js';
import { codeOf } from './helpers.js';

const M1 = '11'.repeat(48);
const M2 = 'a2'.repeat(48);
const now = new Date('2026-03-01T12:00:00Z');

function snpResult(over: Partial<AttestationResult> = {}): AttestationResult {
  return {
    platform: 'sev-snp',
    measurement: M1,
    reportData: '00'.repeat(64),
    hostData: '00'.repeat(32),
    debug: false,
    tcb: { components: { bootloader: 3, tee: 0, snp: 8, microcode: 115, guestSvn: 1 }, raw: '0300000000000873' },
    signingKey: 'vcek',
    rootKeyId: 'ab'.repeat(32),
    evidenceDigest: 'cd'.repeat(32),
    ...over,
  };
}

const strict: AttestationPolicy = {
  allowedPlatforms: ['sev-snp'],
  measurements: { 'sev-snp': [M1] },
  minTcb: { 'sev-snp': { bootloader: 3, snp: 8, microcode: 115 } },
};

function codes(d: PolicyDecision): string[] {
  return d.accepted ? [] : d.reasons.map((r) => r.code);
}

describe('policy evaluation', () => {
  it('accepts a result that meets every rule', () => {
    expect(evaluatePolicy(snpResult(), strict, { now })).toEqual({ accepted: true });
    expect(() => enforcePolicy(snpResult(), strict, { now })).not.toThrow();
  });

  it('platform not allowed', () => {
    expect(codes(evaluatePolicy(snpResult({ platform: 'sgx', measurement: 'ab'.repeat(32) }), strict, { now }))).toContain(
      'PLATFORM_NOT_ALLOWED',
    );
  });

  it('measurement not allowed, and the message names the measurement', () => {
    const d = evaluatePolicy(snpResult({ measurement: M2 }), strict, { now });
    expect(codes(d)).toEqual(['MEASUREMENT_NOT_ALLOWED']);
    expect(!d.accepted && d.reasons[0]!.message).toContain(M2);
  });

  it('measurements compare case-insensitively on the policy side', () => {
    const p = { ...strict, measurements: { 'sev-snp': [M1.toUpperCase()] } };
    expect(evaluatePolicy(snpResult(), p, { now }).accepted).toBe(true);
  });

  it('debug not allowed unless allowDebug', () => {
    expect(codes(evaluatePolicy(snpResult({ debug: true }), strict, { now }))).toEqual(['DEBUG_NOT_ALLOWED']);
    expect(evaluatePolicy(snpResult({ debug: true }), { ...strict, allowDebug: true }, { now }).accepted).toBe(true);
  });

  it('virtual needs both the platform and allowVirtual', () => {
    const v = snpResult({ platform: 'virtual', signingKey: 'virtual-root' });
    const listed: AttestationPolicy = { allowedPlatforms: ['virtual'], measurements: { virtual: [M1] } };
    expect(codes(evaluatePolicy(v, listed, { now }))).toEqual(['VIRTUAL_NOT_ALLOWED']);
    expect(codes(evaluatePolicy(v, { ...listed, allowedPlatforms: [], allowVirtual: true }, { now }))).toEqual(['PLATFORM_NOT_ALLOWED']);
    expect(evaluatePolicy(v, { ...listed, allowVirtual: true }, { now }).accepted).toBe(true);
    // the production policy refuses virtual evidence for two reasons
    expect(codes(evaluatePolicy(v, strict, { now }))).toEqual(['PLATFORM_NOT_ALLOWED', 'VIRTUAL_NOT_ALLOWED', 'MEASUREMENT_NOT_ALLOWED']);
  });

  it('TCB below minimum: one reason per component, missing components count as too low', () => {
    const low = snpResult({ tcb: { components: { bootloader: 2, tee: 0, snp: 7, microcode: 115 }, raw: '' } });
    const d = evaluatePolicy(low, strict, { now });
    expect(codes(d)).toEqual(['TCB_TOO_LOW', 'TCB_TOO_LOW']);
    expect(!d.accepted && d.reasons.map((r) => r.message).join(' ')).toMatch(/bootloader.*2.*3.*snp.*7.*8/s);
    const missing = snpResult({ tcb: { components: { bootloader: 9, snp: 9 }, raw: '' } });
    expect(codes(evaluatePolicy(missing, strict, { now }))).toEqual(['TCB_TOO_LOW']);
    // inherited properties are not components
    const proto = snpResult({ tcb: { components: {}, raw: '' } });
    expect(codes(evaluatePolicy(proto, { ...strict, minTcb: { 'sev-snp': { toString: 0 } } }, { now }))).toEqual(['TCB_TOO_LOW']);
  });

  it('lists every reason at once', () => {
    const bad = snpResult({
      platform: 'tdx',
      measurement: M2,
      debug: true,
      tcb: { components: { bootloader: 0 }, raw: '' },
    });
    const policy: AttestationPolicy = { ...strict, minTcb: { tdx: { pceSvn: 13 } }, maxEvidenceAgeSeconds: 60 };
    const d = evaluatePolicy(bad, policy, { now });
    expect(codes(d)).toEqual([
      'PLATFORM_NOT_ALLOWED',
      'MEASUREMENT_NOT_ALLOWED',
      'DEBUG_NOT_ALLOWED',
      'TCB_TOO_LOW',
      'FRESHNESS_UNKNOWN',
    ]);
    try {
      enforcePolicy(bad, policy, { now });
      throw new Error('not thrown');
    } catch (err) {
      expect(err).toBeInstanceOf(AttestationError);
      expect((err as AttestationError).code).toBe('PLATFORM_NOT_ALLOWED');
      expect(((err as AttestationError).details?.['reasons'] as unknown[]).length).toBe(5);
    }
  });

  it('evidence age: expired, fresh, from the future, unknown, issuedAt fallback', () => {
    const p = { ...strict, maxEvidenceAgeSeconds: 300 };
    expect(evaluatePolicy(snpResult(), p, { now, evidenceTime: new Date(now.getTime() - 299_000) }).accepted).toBe(true);
    expect(codes(evaluatePolicy(snpResult(), p, { now, evidenceTime: new Date(now.getTime() - 301_000) }))).toEqual(['EVIDENCE_EXPIRED']);
    expect(codes(evaluatePolicy(snpResult(), p, { now, evidenceTime: new Date(now.getTime() + 5_000) }))).toEqual([
      'EVIDENCE_NOT_YET_VALID',
    ]);
    expect(
      evaluatePolicy(snpResult(), p, { now, evidenceTime: new Date(now.getTime() + 5_000), maxClockSkewSeconds: 10 }).accepted,
    ).toBe(true);
    expect(codes(evaluatePolicy(snpResult(), p, { now }))).toEqual(['FRESHNESS_UNKNOWN']);
    const issued = snpResult({ issuedAt: new Date(now.getTime() - 600_000).toISOString() });
    expect(codes(evaluatePolicy(issued, p, { now }))).toEqual(['EVIDENCE_EXPIRED']);
  });

  it('validity window of the result is checked at the evaluation time', () => {
    const r = snpResult({ validity: { notBefore: '2025-01-01T00:00:00.000Z', notAfter: '2026-01-01T00:00:00.000Z' } });
    expect(codes(evaluatePolicy(r, strict, { now }))).toEqual(['EVIDENCE_EXPIRED']);
    expect(evaluatePolicy(r, strict, { now: new Date('2025-06-01T00:00:00Z') }).accepted).toBe(true);
    expect(codes(evaluatePolicy(r, strict, { now: new Date('2024-06-01T00:00:00Z') }))).toEqual(['EVIDENCE_NOT_YET_VALID']);
  });

  it('works end to end on virtual evidence', () => {
    const root = generateVirtualRoot();
    const measurement = new Uint8Array(48).fill(0x11);
    const ev = createVirtualEvidence({ rootPrivateKeyPem: root.privateKeyPem, measurement, reportData: new Uint8Array(64), debug: true });
    const r = verifyVirtualEvidence(ev, { trustedRoots: [root.publicKeyPem], now });
    const dev: AttestationPolicy = { allowedPlatforms: ['virtual'], allowVirtual: true, measurements: { virtual: [M1] } };
    expect(codes(evaluatePolicy(r, dev, { now }))).toEqual(['DEBUG_NOT_ALLOWED']);
    expect(evaluatePolicy(r, { ...dev, allowDebug: true }, { now }).accepted).toBe(true);
  });
});

describe('policy validation and hash', () => {
  it('rejects malformed policies with POLICY_INVALID', () => {
    const bad: unknown[] = [
      null,
      [],
      {},
      { allowedPlatforms: ['sev-snp'], measurements: {}, allowDebg: true },
      { allowedPlatforms: ['sev-snpp'], measurements: {} },
      { allowedPlatforms: ['sev-snp'], measurements: { 'sev-snp': ['11'] } },
      { allowedPlatforms: ['sgx'], measurements: { sgx: [M1] } }, // 48 bytes for a 32-byte platform
      { allowedPlatforms: ['sev-snp'], measurements: { 'sev-snp': ['zz'.repeat(48)] } },
      { allowedPlatforms: ['sev-snp'], measurements: { foo: [] } },
      { allowedPlatforms: ['sev-snp'], measurements: {}, allowDebug: 'no' },
      { allowedPlatforms: ['sev-snp'], measurements: {}, minTcb: { 'sev-snp': { snp: -1 } } },
      { allowedPlatforms: ['sev-snp'], measurements: {}, minTcb: { 'sev-snp': { snp: 1.5 } } },
      { allowedPlatforms: ['sev-snp'], measurements: {}, minTcb: { 'sev-snp': { 'bad name': 1 } } },
      { allowedPlatforms: ['sev-snp'], measurements: {}, maxEvidenceAgeSeconds: 0 },
    ];
    for (const p of bad) {
      expect(codeOf(() => normalizePolicy(p)), JSON.stringify(p)).toBe('POLICY_INVALID');
      expect(codeOf(() => evaluatePolicy(snpResult(), p as AttestationPolicy, { now }))).toBe('POLICY_INVALID');
      expect(codeOf(() => policyHash(p as AttestationPolicy))).toBe('POLICY_INVALID');
    }
  });

  it('rejects bad evaluation arguments with INVALID_ARGUMENT', () => {
    expect(codeOf(() => evaluatePolicy(snpResult(), strict, { now: new Date('nope') }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => evaluatePolicy({} as AttestationResult, strict, { now }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => evaluatePolicy(snpResult({ measurement: 'AB'.repeat(48) }), strict, { now }))).toBe('INVALID_ARGUMENT');
  });

  it('policyHash is SHA-256 of the canonical normalized policy and ignores order, case, duplicates and defaults', () => {
    const a: AttestationPolicy = {
      allowedPlatforms: ['sev-snp', 'virtual'],
      measurements: { 'sev-snp': [M2, M1], virtual: [] },
      allowDebug: false,
      minTcb: { 'sev-snp': { snp: 8, bootloader: 3 } },
    };
    const b: AttestationPolicy = {
      minTcb: { 'sev-snp': { bootloader: 3, snp: 8 } },
      measurements: { 'sev-snp': [M1, M2.toUpperCase(), M1] },
      allowedPlatforms: ['virtual', 'sev-snp', 'virtual'],
    };
    expect(policyHash(a)).toBe(policyHash(b));
    const text = canonicalPolicy(a);
    expect(text).toBe(
      `{"allowDebug":false,"allowVirtual":false,"allowedPlatforms":["sev-snp","virtual"],` +
        `"measurements":{"sev-snp":["${M1}","${M2}"]},"minTcb":{"sev-snp":{"bootloader":3,"snp":8}}}`,
    );
    expect(policyHash(a)).toBe(createHash('sha256').update(text).digest('hex'));
  });

  it('policyHash changes with every meaningful field', () => {
    const base: AttestationPolicy = { allowedPlatforms: ['sev-snp'], measurements: { 'sev-snp': [M1] } };
    const variants: AttestationPolicy[] = [
      { ...base, allowedPlatforms: ['sev-snp', 'sgx'] },
      { ...base, measurements: { 'sev-snp': [M2] } },
      { ...base, allowDebug: true },
      { ...base, allowVirtual: true },
      { ...base, minTcb: { 'sev-snp': { snp: 1 } } },
      { ...base, maxEvidenceAgeSeconds: 60 },
    ];
    const hashes = new Set([policyHash(base), ...variants.map(policyHash)]);
    expect(hashes.size).toBe(variants.length + 1);
  });
});

describe('host data and TCB status', () => {
  it('accepts only allowed host data for a platform that lists it', () => {
    const policy: AttestationPolicy = { ...strict, hostData: { 'sev-snp': ['AB'.repeat(32)] } };
    expect(evaluatePolicy(snpResult({ hostData: 'ab'.repeat(32) }), policy, { now }).accepted).toBe(true);
    const refused = evaluatePolicy(snpResult(), policy, { now });
    expect(refused.accepted).toBe(false);
    expect(!refused.accepted && refused.reasons.map((r) => r.code)).toEqual(['HOST_DATA_NOT_ALLOWED']);
    const none = evaluatePolicy(snpResult({ hostData: undefined }), policy, { now });
    expect(!none.accepted && none.reasons[0]!.message).toMatch(/\(none\)/);
  });

  it('refuses a TCB status not in the allowed list, and an unknown one', () => {
    const policy: AttestationPolicy = { ...strict, allowedTcbStatuses: ['UpToDate', 'SWHardeningNeeded'] };
    const withStatus = (status: string): AttestationResult => snpResult({ tcb: { ...snpResult().tcb, status } as AttestationResult['tcb'] });
    expect(evaluatePolicy(withStatus('UpToDate'), policy, { now }).accepted).toBe(true);
    const outOfDate = evaluatePolicy(withStatus('OutOfDate'), policy, { now });
    expect(!outOfDate.accepted && outOfDate.reasons.map((r) => r.code)).toEqual(['TCB_STATUS_NOT_ALLOWED']);
    const unknown = evaluatePolicy(snpResult(), policy, { now });
    expect(!unknown.accepted && unknown.reasons[0]!.message).toMatch(/unknown/);
  });

  it('validates the new members and keeps the hash independent of order and case', () => {
    expect(codeOf(() => normalizePolicy({ ...strict, hostData: { 'sev-snp': ['zz'] } }))).toBe('POLICY_INVALID');
    expect(codeOf(() => normalizePolicy({ ...strict, allowedTcbStatuses: [''] }))).toBe('POLICY_INVALID');
    expect(policyHash({ ...strict, allowedTcbStatuses: ['b', 'a'], hostData: { 'sev-snp': ['AA', 'bb'] } })).toBe(
      policyHash({ ...strict, allowedTcbStatuses: ['a', 'b'], hostData: { 'sev-snp': ['bb', 'aa'] } }),
    );
  });
});
