import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  AttestationError,
  checkReportData,
  createVirtualEvidence,
  detectEvidenceFormat,
  encodeEnvelope,
  evaluatePolicy,
  generateVirtualRoot,
  normalizePolicy,
  parseEnvelope,
  parseSnpReport,
  parseVirtualEnvelope,
  reportDataFor,
  signedPart,
  snpSignatureP1363,
  verifyEvidence,
  verifyVirtualEvidence,
  type AttestationResult,
} from '../../../attestation/index.js';

/**
 * Fuzz: every parser/verifier, for truncated, extended, mutated and random
 * inputs, either returns or throws an AttestationError, and never one with
 * code INTERNAL_ERROR (that would be a library bug caught by the safety net).
 */

const root = generateVirtualRoot();
const now = new Date('2026-01-01T00:00:00Z');
const evidence = createVirtualEvidence({ rootPrivateKeyPem: root.privateKeyPem, measurement: new Uint8Array(48), reportData: new Uint8Array(64) });
const report = parseVirtualEnvelope(evidence).report;

// deterministic PRNG so failures reproduce
let seed = 0x12345678;
function rand(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}
function randomBuf(len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = rand(256);
  return b;
}

const targets: Array<[string, (input: Uint8Array) => unknown]> = [
  ['parseSnpReport', (b) => parseSnpReport(b)],
  ['signedPart', (b) => signedPart(b)],
  ['snpSignatureP1363', (b) => snpSignatureP1363(b)],
  ['parseEnvelope', (b) => parseEnvelope(b)],
  ['parseVirtualEnvelope', (b) => parseVirtualEnvelope(b)],
  ['verifyVirtualEvidence', (b) => verifyVirtualEvidence(b, { trustedRoots: [root.publicKeyPem], now })],
  ['verifyEvidence', (b) => verifyEvidence(b, { now, trustedRoots: { virtual: [root.publicKeyPem] } })],
  ['detectEvidenceFormat', (b) => detectEvidenceFormat(b)],
];

function onlyAttestationErrors(name: string, input: Uint8Array, fn: (b: Uint8Array) => unknown): void {
  try {
    fn(input);
  } catch (err) {
    if (!(err instanceof AttestationError)) {
      throw new Error(`${name} threw a non-AttestationError for ${input.length} bytes: ${String(err)}`);
    }
    expect(err.code, `${name}: ${err.message}`).not.toBe('INTERNAL_ERROR');
  }
}

function inputs(): Uint8Array[] {
  const out: Uint8Array[] = [];
  // truncations and extensions of valid evidence and of a valid raw report
  for (const valid of [evidence, report]) {
    for (let len = 0; len <= valid.length; len += 1 + rand(37)) out.push(valid.subarray(0, len));
    for (const extra of [1, 2, 3, 4, 100]) out.push(new Uint8Array([...valid, ...randomBuf(extra)]));
    // single-byte mutations
    for (let i = 0; i < 200; i++) {
      const m = new Uint8Array(valid);
      m[rand(m.length)] = rand(256);
      out.push(m);
    }
  }
  // random blobs of many lengths, including the report size and blobs with format prefixes
  for (const len of [0, 1, 2, 3, 4, 16, 47, 48, 49, 100, 671, 672, 1183, 1184, 1185, 2600, 5000]) {
    out.push(randomBuf(len));
    const withVersion = randomBuf(len);
    if (len >= 8) withVersion.set([2, 0, 0, 0], 0);
    out.push(withVersion);
    const hcla = randomBuf(len);
    hcla.set(new TextEncoder().encode('HCLA').subarray(0, len));
    out.push(hcla);
    const brace = randomBuf(len);
    if (len > 0) brace[0] = 0x7b;
    out.push(brace);
  }
  // SNP-shaped reports with random content but legal version/algo/vmpl, to reach deep parser paths
  for (let i = 0; i < 50; i++) {
    const b = randomBuf(1184);
    b.set([[2, 3, 5][rand(3)]!, 0, 0, 0], 0);
    b.set([rand(4), 0, 0, 0], 0x30);
    b.set([1, 0, 0, 0], 0x34);
    out.push(b);
  }
  // JSON-ish inputs
  const text = new TextDecoder().decode(evidence);
  for (const s of [
    '{}',
    '[]',
    'null',
    '{"platform":1}',
    '{"platform":"virtual"}',
    '{"platform":"virtual","report":null,"root":"x"}',
    '{"platform":"virtual","report":{},"root":"x"}',
    '{"platform":"","report":"","root":""}',
    '{"platform":"virtual","report":"","root":""}',
    '{"__proto__":{"platform":"virtual"},"platform":"virtual"}',
    '{"constructor":"x","platform":"virtual"}',
    text.replace('"root":"', '"root":"AAAA'),
    text.replace(/"root":"[^"]*"/, '"root":"AAAA"'),
    text.replace(/"root":"[^"]*"/, `"root":"${Buffer.from(randomBytes(120)).toString('base64')}"`),
    text.slice(0, -1),
    text + ' ',
    '\uFEFF' + text,
    '{"platform":"virtual","report":"' + 'A'.repeat(70_000) + '"}',
    '{' + '"a":{'.repeat(5000) + '}'.repeat(5001),
  ]) {
    out.push(new TextEncoder().encode(s));
  }
  out.push(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])); // invalid UTF-8
  out.push(encodeEnvelope({ platform: 'virtual', report: Buffer.from(randomBuf(1184)).toString('base64'), root: parseEnvelope(evidence).fields['root']! }));
  return out;
}

describe('fuzz: parsers and verifiers throw only AttestationError', () => {
  const all = inputs();
  for (const [name, fn] of targets) {
    it(`${name} over ${all.length} inputs`, () => {
      for (const input of all) onlyAttestationErrors(name, input, fn);
      // non-byte inputs
      for (const junk of [undefined, null, 42, 'text', {}, [1, 2, 3], new ArrayBuffer(8)]) {
        onlyAttestationErrors(name, junk as unknown as Uint8Array, fn);
      }
    }, 120_000);
  }

  it('option objects of the wrong shape only give AttestationError', () => {
    const junkValues: unknown[] = [undefined, null, 0, 'x', [], {}, { now: 'yesterday' }, { trustedRoots: [null] }, { now, trustedRoots: { virtual: 'x' } }];
    for (const junk of junkValues) {
      onlyAttestationErrors('verifyEvidence opts', evidence, (b) => verifyEvidence(b, junk as never));
      onlyAttestationErrors('verifyVirtualEvidence opts', evidence, (b) => verifyVirtualEvidence(b, junk as never));
      onlyAttestationErrors('createVirtualEvidence', evidence, () => createVirtualEvidence(junk as never));
      onlyAttestationErrors('reportDataFor', evidence, () => reportDataFor(junk as never));
      onlyAttestationErrors('normalizePolicy', evidence, () => normalizePolicy(junk));
      onlyAttestationErrors('evaluatePolicy', evidence, () =>
        evaluatePolicy(junk as AttestationResult, { allowedPlatforms: [], measurements: {} }, { now }),
      );
      onlyAttestationErrors('evaluatePolicy opts', evidence, () =>
        evaluatePolicy(verifyVirtualEvidence(evidence, { trustedRoots: [root.publicKeyPem], now }), junk as never, junk as never),
      );
      onlyAttestationErrors('checkReportData', evidence, () => checkReportData(junk as never, junk as never));
    }
  });
});
