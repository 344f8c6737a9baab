import { beforeAll, describe, expect, it } from 'vitest';
import { AttestationError } from '../../../attestation/index.js';
import {
  amdExtensions,
  decodeSnpEvidence,
  parseAmdCertificates,
  parseHclReport,
  verifySnpReport,
  type SnpTrustAnchor,
  type SnpVerifyOptions,
} from '../../../attestation/snp/index.js';
import { hex, sample, samplesAbsentMessage, samplesPresent } from './samples.js';
import { hclWrap, makeLeaf, makeProductPki, sha256, signedReport, type TestLeaf, type TestProductPki } from './snp-testpki.js';

/**
 * Fuzz of the SEV-SNP verifier and its parsers: truncated, extended, mutated and
 * random inputs (evidence, endorsements, trust anchors) either return or throw an
 * AttestationError, never another error and never INTERNAL_ERROR.
 */

let seed = 0x5eed5eed;
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
function mutate(b: Uint8Array, flips: number): Uint8Array {
  const c = new Uint8Array(b);
  for (let k = 0; k < flips; k++) c[rand(c.length)] = rand(256);
  return c;
}

function typedOnly(what: string, fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof AttestationError)) throw new Error(`${what}: untyped ${String(err)}`);
    if (err.code === 'INTERNAL_ERROR') throw new Error(`${what}: INTERNAL_ERROR ${String((err as Error).cause)}`);
  }
}

const NOW = new Date('2026-01-01T00:00:00Z');

describe('SEV-SNP fuzz: only AttestationError, never INTERNAL_ERROR', () => {
  let pki: TestProductPki;
  let vcek: TestLeaf;
  let report: Uint8Array;
  let hcl: Uint8Array;
  let options: SnpVerifyOptions;
  let roots: SnpTrustAnchor[];

  beforeAll(async () => {
    pki = await makeProductPki('Milan');
    const chip = new Uint8Array(64).fill(9);
    const tcb = { bootloader: 1, tee: 2, snp: 3, microcode: 4 };
    vcek = await makeLeaf(pki.ask, { product: 'Milan-B0', ...tcb, hwid: chip });
    roots = [pki.anchor];
    report = signedReport({ reportedTcb: tcb, chipId: chip }, vcek.privateKey);
    const runtime = new Uint8Array(Buffer.from('{"user-data":"00"}'));
    const rd = new Uint8Array(64);
    rd.set(sha256(runtime));
    hcl = hclWrap(signedReport({ reportedTcb: tcb, chipId: chip, reportData: rd }, vcek.privateKey), runtime);
    options = { now: NOW, endorsements: [vcek.der], trustedRoots: roots };
    expect(verifySnpReport(report, options).platform).toBe('sev-snp');
    expect(verifySnpReport(hcl, options).platform).toBe('sev-snp');
  }, 60_000);

  it('evidence: truncated, extended, mutated, random, hex variants', () => {
    const hexText = new Uint8Array(Buffer.from(hex(report)));
    const inputs: Uint8Array[] = [];
    for (let n = 0; n <= report.length + 4; n += 7) inputs.push(report.subarray(0, n));
    for (let n = 0; n <= hcl.length + 8; n += 11) inputs.push(hcl.subarray(0, n));
    for (let n = 0; n < hexText.length; n += 97) inputs.push(hexText.subarray(0, n));
    inputs.push(new Uint8Array([...report, 0]), new Uint8Array([...hcl, 1]), new Uint8Array([...hexText, 0x47]));
    for (let k = 0; k < 150; k++) inputs.push(mutate(report, 1 + rand(4)), mutate(hcl, 1 + rand(4)));
    for (let k = 0; k < 60; k++) inputs.push(randomBuf(rand(3000)), randomBuf(1184), mutate(hcl.subarray(0, 0x4d4 + rand(40)), 2));
    for (const input of inputs) {
      typedOnly('decodeSnpEvidence', () => decodeSnpEvidence(input));
      typedOnly('parseHclReport', () => parseHclReport(input));
      typedOnly('verifySnpReport', () => verifySnpReport(input, options));
    }
    typedOnly('verifySnpReport(no endorsements)', () => verifySnpReport(randomBuf(1184), { now: NOW }));
  });

  it('endorsements: truncated, mutated, random DER and PEM', () => {
    const items: Uint8Array[] = [];
    for (let n = 0; n < vcek.der.length; n += 3) items.push(vcek.der.subarray(0, n));
    for (let i = 0; i < vcek.der.length; i += 2) {
      const c = new Uint8Array(vcek.der);
      c[i] = c[i]! ^ (1 << rand(8));
      items.push(c);
    }
    const pem = Buffer.from(vcek.pem);
    for (let k = 0; k < 100; k++) items.push(mutate(pem, 1 + rand(3)), randomBuf(rand(2000)));
    items.push(new Uint8Array(Buffer.from('-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n')));
    items.push(new Uint8Array(Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')));
    for (const item of items) {
      typedOnly('parseAmdCertificates', () => {
        for (const c of parseAmdCertificates(item)) amdExtensions(c);
      });
      typedOnly('verifySnpReport(endorsement)', () => verifySnpReport(report, { ...options, endorsements: [item] }));
    }
  });

  it('options and trust anchors of any shape', () => {
    const bad: unknown[] = [
      undefined,
      null,
      42,
      'x',
      {},
      { now: 'yesterday' },
      { now: new Date(NaN) },
      { now: NOW, endorsements: [42] },
      { now: NOW, endorsements: [vcek.der], trustedRoots: [null] },
      { now: NOW, endorsements: [vcek.der], trustedRoots: [{ product: 'Milan' }] },
      { now: NOW, endorsements: [vcek.der], trustedRoots: [{ product: 'Milan', ark: randomBuf(300) }] },
      { now: NOW, endorsements: [vcek.der], trustedRoots: [{ product: 'Milan', ark: pki.ark.der, ask: mutate(pki.ask.der, 3) }] },
      { now: NOW, endorsements: [vcek.der], trustedRoots: [{ product: 'Milan', ark: mutate(pki.ark.der, 2) }] },
      { now: NOW, endorsements: new Array(40).fill(vcek.der) },
    ];
    for (const o of bad) typedOnly('verifySnpReport(options)', () => verifySnpReport(report, o as SnpVerifyOptions));
    typedOnly('amdExtensions(garbage)', () => amdExtensions({} as never));
  });
});

describe.skipIf(!samplesPresent)(`SEV-SNP fuzz on the published samples${samplesPresent ? '' : ` — SKIPPED: ${samplesAbsentMessage}`}`, () => {
  it('mutated real VCEK certificates and reports', () => {
    const r = sample('amd/snp/gsg_milan_v2_report.bin');
    const v = sample('amd/snp/gsg_milan_v2_vcek.der');
    const at = new Date('2025-06-01T00:00:00Z');
    for (let k = 0; k < 150; k++) {
      typedOnly('real VCEK', () => verifySnpReport(r, { now: at, endorsements: [mutate(v, 1 + rand(3))] }));
    }
    for (let k = 0; k < 60; k++) typedOnly('real report', () => verifySnpReport(mutate(r, 1 + rand(6)), { now: at, endorsements: [v] }));
  });
});
