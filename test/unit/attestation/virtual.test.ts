import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  SNP_REPORT_SIZE,
  SNP_SIGNED_SIZE,
  createVirtualEvidence,
  encodeEnvelope,
  generateVirtualRoot,
  parseEnvelope,
  parseSnpReport,
  parseVirtualEnvelope,
  signedPart,
  snpSignatureP1363,
  verifyVirtualEvidence,
  virtualMeasurement,
  virtualRootKeyId,
  withSnpSignature,
  type AttestationResult,
} from '../../../attestation/index.js';
import { codeOf } from './helpers.js';
import { hex } from './samples.js';

const root = generateVirtualRoot();
const otherRoot = generateVirtualRoot();
const now = new Date('2026-01-01T00:00:00Z');
const measurement = virtualMeasurement(new TextEncoder().encode('enclave program v1'));
const reportData = new Uint8Array(64).map((_, i) => i);

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

/** Re-wraps a (modified) report in a canonical virtual envelope with the given root. */
function rewrap(report: Uint8Array, rootPem = root.publicKeyPem): Uint8Array {
  const der = createPublicKey(rootPem).export({ type: 'spki', format: 'der' });
  return encodeEnvelope({ platform: 'virtual', report: b64(report), root: b64(der) });
}

describe('virtual root', () => {
  it('is an EC P-384 pair in SPKI / PKCS#8 PEM with a key id over the SPKI DER', () => {
    expect(root.publicKeyPem).toContain('BEGIN PUBLIC KEY');
    expect(root.privateKeyPem).toContain('BEGIN PRIVATE KEY');
    const key = createPublicKey(root.publicKeyPem);
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
    const der = key.export({ type: 'spki', format: 'der' });
    expect(root.keyId).toBe(createHash('sha256').update(der).digest('hex'));
    expect(virtualRootKeyId(root.publicKeyPem)).toBe(root.keyId);
    expect(root.keyId).not.toBe(otherRoot.keyId);
  });

  it('virtualMeasurement is SHA-384 of the program', () => {
    const program = new TextEncoder().encode('hello');
    expect(hex(virtualMeasurement(program))).toBe(createHash('sha384').update(program).digest('hex'));
  });
});

describe('virtual evidence', () => {
  const evidence = createVirtualEvidence({ rootPrivateKeyPem: root.privateKeyPem, measurement, reportData });

  it('round-trips: verify returns the measurement, report data and a virtual result', () => {
    const r: AttestationResult = verifyVirtualEvidence(evidence, { trustedRoots: [root.publicKeyPem], now });
    expect(r.platform).toBe('virtual');
    expect(r.signingKey).toBe('virtual-root');
    expect(r.measurement).toBe(hex(measurement));
    expect(r.reportData).toBe(hex(reportData));
    expect(r.hostData).toBe('00'.repeat(32));
    expect(r.debug).toBe(false);
    expect(r.chipId).toBeUndefined();
    expect(r.validity).toBeUndefined();
    expect(r.rootKeyId).toBe(root.keyId);
    expect(r.evidenceDigest).toBe(createHash('sha256').update(evidence).digest('hex'));
    expect(r.tcb.components).toEqual({ bootloader: 0, tee: 0, snp: 0, microcode: 0, guestSvn: 0 });
    expect(r.snp?.version).toBe(2);
    expect(r.snp?.familyId).toBe(Buffer.from('cloister-virtual').toString('hex'));
    expect(r.snp?.maskChipKey).toBe(true);
    expect(Object.isFrozen(r) && Object.isFrozen(r.tcb) && Object.isFrozen(r.tcb.components)).toBe(true);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r); // plain JSON data
  });

  it('is the documented envelope around a real-layout SNP report signed like SNP', () => {
    const text = new TextDecoder().decode(evidence);
    expect(text.startsWith('{"platform":"virtual","report":"')).toBe(true);
    expect(Object.keys(JSON.parse(text) as object)).toEqual(['platform', 'report', 'root']);
    expect(text).not.toContain('PRIVATE');
    const { report, rootSpkiDer } = parseVirtualEnvelope(evidence);
    expect(report.length).toBe(SNP_REPORT_SIZE);
    const parsed = parseSnpReport(report);
    expect(parsed.version).toBe(2);
    expect(parsed.signatureAlgo).toBe(1);
    expect(parsed.signerInfo).toMatchObject({ signingKey: 'vcek', maskChipKey: true });
    expect(hex(parsed.measurement)).toBe(hex(measurement));
    // r, s little-endian in 72-byte fields; P1363 (big-endian) verifies with node:crypto
    const key = createPublicKey({ key: Buffer.from(rootSpkiDer), format: 'der', type: 'spki' });
    const sig = snpSignatureP1363(report)!;
    expect(verify('sha384', signedPart(report), { key, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
    expect(hex(parsed.signature.r.subarray(0, 48))).toBe(hex(sig.subarray(0, 48).reverse()));
  });

  it('carries host data, TCB, guest SVN and the debug bit', () => {
    const ev = createVirtualEvidence({
      rootPrivateKeyPem: root.privateKeyPem,
      measurement,
      reportData,
      hostData: new Uint8Array(32).fill(0xab),
      debug: true,
      tcb: { bootloader: 3, tee: 0, snp: 8, microcode: 115 },
      guestSvn: 2,
    });
    const r = verifyVirtualEvidence(ev, { trustedRoots: [root.publicKeyPem], now });
    expect(r.debug).toBe(true);
    expect(r.hostData).toBe('ab'.repeat(32));
    expect(r.tcb.components).toEqual({ bootloader: 3, tee: 0, snp: 8, microcode: 115, guestSvn: 2 });
    expect(r.tcb.raw).toBe('0300000000000873');
    expect(parseSnpReport(parseVirtualEnvelope(ev).report).policy.debug).toBe(true);
  });

  it('any changed byte in the signed part fails with SIGNATURE_INVALID', () => {
    const { report } = parseVirtualEnvelope(evidence);
    for (let i = 0; i < SNP_SIGNED_SIZE; i++) {
      const tampered = new Uint8Array(report);
      tampered[i] = tampered[i]! ^ (1 << (i % 8));
      expect(codeOf(() => verifyVirtualEvidence(rewrap(tampered), { trustedRoots: [root.publicKeyPem], now })), `byte ${i}`).toBe(
        'SIGNATURE_INVALID',
      );
    }
  }, 120_000);

  it('a changed signature fails with SIGNATURE_INVALID', () => {
    const { report } = parseVirtualEnvelope(evidence);
    for (const off of [0x2a0, 0x2a0 + 47, 0x2e8, 0x2e8 + 47]) {
      const tampered = new Uint8Array(report);
      tampered[off] = tampered[off]! ^ 0x01;
      expect(codeOf(() => verifyVirtualEvidence(rewrap(tampered), { trustedRoots: [root.publicKeyPem], now }))).toBe(
        'SIGNATURE_INVALID',
      );
    }
    const zeroSig = withSnpSignature(report, new Uint8Array(96));
    expect(codeOf(() => verifyVirtualEvidence(rewrap(zeroSig), { trustedRoots: [root.publicKeyPem], now }))).toBe(
      'SIGNATURE_INVALID',
    );
  });

  it('evidence from an untrusted root fails with UNTRUSTED_ROOT', () => {
    expect(codeOf(() => verifyVirtualEvidence(evidence, { trustedRoots: [otherRoot.publicKeyPem], now }))).toBe('UNTRUSTED_ROOT');
    expect(codeOf(() => verifyVirtualEvidence(evidence, { trustedRoots: [], now }))).toBe('UNTRUSTED_ROOT');
    const foreign = createVirtualEvidence({ rootPrivateKeyPem: otherRoot.privateKeyPem, measurement, reportData });
    expect(codeOf(() => verifyVirtualEvidence(foreign, { trustedRoots: [root.publicKeyPem], now }))).toBe('UNTRUSTED_ROOT');
    // several trusted roots: the right one is picked
    expect(verifyVirtualEvidence(foreign, { trustedRoots: [root.publicKeyPem, otherRoot.publicKeyPem], now }).rootKeyId).toBe(
      otherRoot.keyId,
    );
  });

  it('a forged root hint cannot make evidence verify: pinned root named, wrong signer → SIGNATURE_INVALID', () => {
    const foreign = createVirtualEvidence({ rootPrivateKeyPem: otherRoot.privateKeyPem, measurement, reportData });
    const relabelled = rewrap(parseVirtualEnvelope(foreign).report, root.publicKeyPem);
    expect(codeOf(() => verifyVirtualEvidence(relabelled, { trustedRoots: [root.publicKeyPem], now }))).toBe('SIGNATURE_INVALID');
  });

  it('pins roots by SPKI DER bytes, not PEM text', () => {
    const reformatted = root.publicKeyPem.replace(/\n/g, '\r\n') + '\n';
    expect(reformatted).not.toBe(root.publicKeyPem);
    expect(verifyVirtualEvidence(evidence, { trustedRoots: [reformatted], now }).rootKeyId).toBe(root.keyId);
  });

  it('rejects non-canonical envelopes and wrong members', () => {
    const env = JSON.parse(new TextDecoder().decode(evidence)) as Record<string, string>;
    const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
    const opts = { trustedRoots: [root.publicKeyPem], now };
    expect(codeOf(() => verifyVirtualEvidence(enc(JSON.stringify(env, null, 1)), opts))).toBe('EVIDENCE_MALFORMED');
    expect(codeOf(() => verifyVirtualEvidence(enc(JSON.stringify({ root: env['root'], report: env['report'], platform: 'virtual' })), opts))).toBe(
      'EVIDENCE_MALFORMED',
    );
    expect(codeOf(() => verifyVirtualEvidence(encodeEnvelope({ ...env, extra: 'x' }), opts))).toBe('EVIDENCE_MALFORMED');
    expect(codeOf(() => verifyVirtualEvidence(encodeEnvelope({ ...env, platform: 'sev-snp' }), opts))).toBe('UNSUPPORTED_FORMAT');
    expect(codeOf(() => verifyVirtualEvidence(encodeEnvelope({ ...env, report: env['report']!.slice(0, -4) }), opts))).toBe(
      'EVIDENCE_MALFORMED',
    );
    expect(codeOf(() => verifyVirtualEvidence(encodeEnvelope({ ...env, report: 'not base64!' }), opts))).toBe('EVIDENCE_MALFORMED');
    // duplicate key: JSON.parse keeps the last one, canonical check refuses it
    const dup = new TextDecoder().decode(evidence).replace('{"platform":"virtual",', '{"platform":"virtual","platform":"virtual",');
    expect(codeOf(() => verifyVirtualEvidence(enc(dup), opts))).toBe('EVIDENCE_MALFORMED');
    expect(parseEnvelope(evidence).platform).toBe('virtual');
  });

  it('validates creation options', () => {
    const base = { rootPrivateKeyPem: root.privateKeyPem, measurement, reportData };
    expect(codeOf(() => createVirtualEvidence({ ...base, measurement: new Uint8Array(32) }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => createVirtualEvidence({ ...base, reportData: new Uint8Array(32) }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => createVirtualEvidence({ ...base, hostData: new Uint8Array(31) }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => createVirtualEvidence({ ...base, rootPrivateKeyPem: root.publicKeyPem }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => createVirtualEvidence({ ...base, rootPrivateKeyPem: 'garbage PRIVATE KEY' }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => createVirtualEvidence({ ...base, tcb: { microcode: 300 } }))).toBe('INVALID_ARGUMENT');
  });

  it('validates verification options', () => {
    expect(codeOf(() => verifyVirtualEvidence(evidence, { trustedRoots: [root.privateKeyPem], now }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => verifyVirtualEvidence(evidence, { trustedRoots: ['nope'], now }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => verifyVirtualEvidence(evidence, { trustedRoots: [root.publicKeyPem], now: new Date('x') }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(codeOf(() => verifyVirtualEvidence(evidence, { trustedRoots: 'x' as unknown as string[], now }))).toBe('INVALID_ARGUMENT');
    // an EC key on another curve is not a virtual root
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(codeOf(() => verifyVirtualEvidence(evidence, { trustedRoots: [p256], now }))).toBe('INVALID_ARGUMENT');
  });

  it('requires the virtual markers inside the signed report', () => {
    // a correctly signed SNP-layout report without the FAMILY_ID marker is not virtual evidence
    const { report } = parseVirtualEnvelope(evidence);
    const unmarked = new Uint8Array(report);
    unmarked.fill(0, 0x10, 0x20);
    const key = createPrivateKey(root.privateKeyPem);
    const resigned = withSnpSignature(unmarked, new Uint8Array(sign('sha384', signedPart(unmarked), { key, dsaEncoding: 'ieee-p1363' })));
    expect(codeOf(() => verifyVirtualEvidence(rewrap(resigned), { trustedRoots: [root.publicKeyPem], now }))).toBe('EVIDENCE_MALFORMED');
  });
});
