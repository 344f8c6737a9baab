import { describe, expect, it } from 'vitest';
import {
  VerificationCache,
  createVirtualEvidence,
  detectEvidenceFormat,
  encodeEnvelope,
  encodeSnpReport,
  generateVirtualRoot,
  verifyEvidence,
  type AttestationResult,
} from '../../../attestation/index.js';
import { codeOf } from './helpers.js';

const root = generateVirtualRoot();
const other = generateVirtualRoot();
const now = new Date('2026-01-01T00:00:00Z');
const evidence = createVirtualEvidence({
  rootPrivateKeyPem: root.privateKeyPem,
  measurement: new Uint8Array(48).fill(7),
  reportData: new Uint8Array(64).fill(9),
});
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('format detection', () => {
  it('classifies by form', () => {
    expect(detectEvidenceFormat(evidence)).toBe('envelope');
    expect(detectEvidenceFormat(encodeSnpReport())).toBe('sev-snp-report');
    expect(detectEvidenceFormat(enc(Buffer.from(encodeSnpReport()).toString('hex')))).toBe('sev-snp-report');
    expect(detectEvidenceFormat(enc('eyJhbGciOiJSUzI1NiJ9.e30.sig'))).toBe('jwt');
    expect(detectEvidenceFormat(enc('{"token":"eyJhbGciOiJSUzI1NiJ9.e30.sig"}'))).toBe('jwt');
    expect(detectEvidenceFormat(new Uint8Array(0))).toBe('unknown');
    expect(detectEvidenceFormat(new Uint8Array(100))).toBe('unknown');
    expect(detectEvidenceFormat('x' as unknown as Uint8Array)).toBe('unknown');
  });
});

describe('verifyEvidence', () => {
  it('verifies virtual evidence with the declared virtual roots', () => {
    const r = verifyEvidence(evidence, { now, trustedRoots: { virtual: [root.publicKeyPem] } });
    expect(r.platform).toBe('virtual');
    expect(r.measurement).toBe('07'.repeat(48));
  });

  it('refuses virtual evidence without declared virtual roots', () => {
    expect(codeOf(() => verifyEvidence(evidence, { now, trustedRoots: {} }))).toBe('UNTRUSTED_ROOT');
    expect(codeOf(() => verifyEvidence(evidence, { now, trustedRoots: { virtual: [other.publicKeyPem] } }))).toBe('UNTRUSTED_ROOT');
  });

  it('sends each hardware format to its verifier, which refuses what it cannot verify', () => {
    // A bare SEV-SNP report without its VCEK/VLEK endorsement.
    expect(codeOf(() => verifyEvidence(encodeSnpReport(), { now, trustedRoots: { virtual: [root.publicKeyPem] } }))).toBe(
      'COLLATERAL_MISSING',
    );
    // An Azure Attestation token needs its issuer's key set.
    expect(codeOf(() => verifyEvidence(enc('eyJhbGciOiJSUzI1NiJ9.e30.sig'), { now, trustedRoots: {} }))).toBe('COLLATERAL_MISSING');
    expect(
      codeOf(() => verifyEvidence(enc('eyJhbGciOiJSUzI1NiJ9.e30.sig'), { now, trustedRoots: {}, jwks: { keys: [] } })),
    ).not.toBe('INTERNAL_ERROR');
    // Hardware evidence never comes in the virtual envelope.
    expect(codeOf(() => verifyEvidence(encodeEnvelope({ platform: 'sev-snp', report: '' }), { now, trustedRoots: {} }))).toBe(
      'UNSUPPORTED_FORMAT',
    );
    expect(codeOf(() => verifyEvidence(encodeEnvelope({ platform: 'martian' }), { now, trustedRoots: {} }))).toBe('UNSUPPORTED_FORMAT');
    expect(codeOf(() => verifyEvidence(new Uint8Array(10), { now, trustedRoots: {} }))).toBe('UNSUPPORTED_FORMAT');
  });

  it('enforces the size bound and validates options', () => {
    expect(codeOf(() => verifyEvidence(evidence, { now, trustedRoots: {}, maxEvidenceBytes: 100 }))).toBe('EVIDENCE_MALFORMED');
    expect(codeOf(() => verifyEvidence(evidence, { now: new Date(NaN), trustedRoots: {} }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => verifyEvidence(evidence, { now } as never))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => verifyEvidence(evidence, { now, trustedRoots: { virtual: ['junk'] } }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => verifyEvidence(null as unknown as Uint8Array, { now, trustedRoots: {} }))).toBe('EVIDENCE_MALFORMED');
  });

  it('caches successes per evidence digest and trust anchors, never failures', () => {
    const cache = new VerificationCache({ maxEntries: 2 });
    const opts = { now, trustedRoots: { virtual: [root.publicKeyPem] }, cache };
    const a: AttestationResult = verifyEvidence(evidence, opts);
    const b = verifyEvidence(evidence, opts);
    expect(b).toBe(a);
    expect(cache.hits).toBe(1);
    // a different set of trusted roots is a different key: the cached success is not reused
    expect(codeOf(() => verifyEvidence(evidence, { ...opts, trustedRoots: { virtual: [other.publicKeyPem] } }))).toBe('UNTRUSTED_ROOT');
    expect(verifyEvidence(evidence, { ...opts, trustedRoots: { virtual: [other.publicKeyPem, root.publicKeyPem] } })).not.toBe(a);
    expect(cache.size).toBe(2);
    // failures are not cached
    expect(codeOf(() => verifyEvidence(new Uint8Array(10), opts))).toBe('UNSUPPORTED_FORMAT');
    expect(cache.size).toBe(2);
    // bounded LRU: a third entry evicts the least recently used
    const third = createVirtualEvidence({ rootPrivateKeyPem: root.privateKeyPem, measurement: new Uint8Array(48), reportData: new Uint8Array(64) });
    verifyEvidence(third, opts);
    expect(cache.size).toBe(2);
    expect(codeOf(() => new VerificationCache({ maxEntries: 0 }))).toBe('INVALID_ARGUMENT');
  });

  it('the cache honours result validity at the evaluation time', () => {
    const cache = new VerificationCache();
    const r = { validity: { notBefore: '2025-01-01T00:00:00.000Z', notAfter: '2025-12-31T00:00:00.000Z' } } as AttestationResult;
    cache.set('k', r);
    expect(cache.get('k', new Date('2025-06-01T00:00:00Z'))).toBe(r);
    expect(cache.get('k', new Date('2026-06-01T00:00:00Z'))).toBeUndefined();
  });
});
