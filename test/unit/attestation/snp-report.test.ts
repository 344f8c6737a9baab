import { X509Certificate, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  SNP_OFFSETS,
  SNP_REPORT_SIZE,
  SNP_SIGNED_SIZE,
  decodeSnpTcb,
  encodeSnpReport,
  parseSnpReport,
  signedPart,
  snpSignatureP1363,
  verifyEvidence,
  withSnpSignature,
} from '../../../attestation/index.js';
import { codeOf } from './helpers.js';
import { hex, sample, sampleText, samplesAbsentMessage, samplesPresent, unhex } from './samples.js';

const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

describe('SEV-SNP report encoder/parser', () => {
  it('round-trips every field in the real layout', () => {
    const sig = new Uint8Array(96).map((_, i) => i + 1);
    const raw = encodeSnpReport({
      version: 5,
      guestSvn: 7,
      policy: { abiMajor: 1, abiMinor: 55, smt: true, debug: true, migrateMa: true },
      familyId: bytes(16, 0x11),
      imageId: bytes(16, 0x22),
      vmpl: 2,
      currentTcb: { bootloader: 3, tee: 0, snp: 8, microcode: 115 },
      reportedTcb: { bootloader: 2, tee: 1, snp: 7, microcode: 100 },
      committedTcb: { bootloader: 1 },
      launchTcb: { microcode: 9 },
      platformInfo: 0x25n,
      signerInfo: { signingKey: 'vlek', authorKeyEn: true, maskChipKey: true },
      reportData: bytes(64, 0xaa),
      measurement: bytes(48, 0xbb),
      hostData: bytes(32, 0xcc),
      idKeyDigest: bytes(48, 0x01),
      authorKeyDigest: bytes(48, 0x02),
      reportId: bytes(32, 0x03),
      reportIdMa: bytes(32, 0x04),
      cpuid: { family: 0x19, model: 0x11, stepping: 1 },
      chipId: bytes(64, 0x05),
      currentVersion: { build: 3, minor: 55, major: 1 },
      committedVersion: { build: 2, minor: 54, major: 1 },
      launchMitVector: 0x1234n,
      currentMitVector: 0x5678n,
      signature: sig,
    });
    expect(raw.length).toBe(SNP_REPORT_SIZE);
    const r = parseSnpReport(raw);
    expect(r.version).toBe(5);
    expect(r.guestSvn).toBe(7);
    expect(r.policy.debug).toBe(true);
    expect(r.policy.migrateMa).toBe(true);
    expect(r.policy.smt).toBe(true);
    expect(r.policy.abiMajor).toBe(1);
    expect(r.policy.abiMinor).toBe(55);
    expect(r.policy.raw & (1n << 17n)).toBe(1n << 17n);
    expect(r.vmpl).toBe(2);
    expect(r.signatureAlgo).toBe(1);
    expect(r.currentTcb).toMatchObject({ bootloader: 3, tee: 0, snp: 8, microcode: 115, layout: 'milan-genoa' });
    expect(r.reportedTcb).toMatchObject({ bootloader: 2, tee: 1, snp: 7, microcode: 100 });
    expect(r.committedTcb.bootloader).toBe(1);
    expect(r.launchTcb.microcode).toBe(9);
    expect(r.platformInfo).toMatchObject({ raw: 0x25n, smtEnabled: true, eccEnabled: true, aliasCheckComplete: true });
    expect(r.signerInfo).toEqual({ raw: 0b00111, authorKeyEn: true, maskChipKey: true, signingKey: 'vlek' });
    expect(hex(r.reportData)).toBe('aa'.repeat(64));
    expect(hex(r.measurement)).toBe('bb'.repeat(48));
    expect(hex(r.hostData)).toBe('cc'.repeat(32));
    expect(hex(r.idKeyDigest)).toBe('01'.repeat(48));
    expect(hex(r.authorKeyDigest)).toBe('02'.repeat(48));
    expect(hex(r.reportId)).toBe('03'.repeat(32));
    expect(hex(r.reportIdMa)).toBe('04'.repeat(32));
    expect(hex(r.familyId)).toBe('11'.repeat(16));
    expect(hex(r.imageId)).toBe('22'.repeat(16));
    expect(r.cpuid).toEqual({ family: 0x19, model: 0x11, stepping: 1 });
    expect(hex(r.chipId)).toBe('05'.repeat(64));
    expect(r.currentVersion).toEqual({ build: 3, minor: 55, major: 1 });
    expect(r.committedVersion).toEqual({ build: 2, minor: 54, major: 1 });
    expect(r.launchMitVector).toBe(0x1234n);
    expect(r.currentMitVector).toBe(0x5678n);
    // signature stored little-endian in 72-byte fields, P1363 view restores big-endian
    expect(r.signature.r.length).toBe(72);
    expect(r.signature.r[0]).toBe(48); // last byte of r (BE) first
    expect(hex(r.signature.r.subarray(48))).toBe('00'.repeat(24));
    expect(hex(snpSignatureP1363(r)!)).toBe(hex(sig));
    expect(hex(r.raw)).toBe(hex(raw));
  });

  it('signedPart is bytes 0x000..0x29F', () => {
    const raw = encodeSnpReport({ measurement: bytes(48, 9) });
    const part = signedPart(raw);
    expect(part.length).toBe(SNP_SIGNED_SIZE);
    expect(hex(part)).toBe(hex(raw.subarray(0, 0x2a0)));
    expect(hex(signedPart(parseSnpReport(raw)))).toBe(hex(part));
  });

  it('decodes the Turin TCB layout for CPUID family 0x1A', () => {
    const raw = encodeSnpReport({
      version: 3,
      cpuid: { family: 0x1a, model: 0x02, stepping: 1 },
      reportedTcb: { fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 5 },
    });
    expect(parseSnpReport(raw).reportedTcb).toMatchObject({ layout: 'turin', fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 5 });
    expect(decodeSnpTcb(unhex('0200000000000544'), 'milan-genoa')).toMatchObject({ bootloader: 2, tee: 0, snp: 5, microcode: 0x44 });
  });

  it('defaults: version 2, policy 0x30000, VCEK, algo 1, debug off', () => {
    const r = parseSnpReport(encodeSnpReport());
    expect(r.version).toBe(2);
    expect(r.policy.raw).toBe(0x30000n);
    expect(r.policy.debug).toBe(false);
    expect(r.signerInfo.signingKey).toBe('vcek');
    expect(r.cpuid).toBeUndefined();
  });

  it('rejects wrong lengths', () => {
    const raw = encodeSnpReport();
    expect(codeOf(() => parseSnpReport(raw.subarray(0, SNP_REPORT_SIZE - 1)))).toBe('EVIDENCE_MALFORMED');
    expect(codeOf(() => parseSnpReport(new Uint8Array([...raw, 0])))).toBe('EVIDENCE_MALFORMED');
    expect(codeOf(() => parseSnpReport(new Uint8Array(0)))).toBe('EVIDENCE_MALFORMED');
    expect(codeOf(() => parseSnpReport('x' as unknown as Uint8Array))).toBe('EVIDENCE_MALFORMED');
  });

  it('rejects unsupported versions and algorithms', () => {
    for (const v of [0, 1, 4, 6, 0xffffffff]) {
      const raw = encodeSnpReport();
      new DataView(raw.buffer).setUint32(0, v, true);
      expect(codeOf(() => parseSnpReport(raw))).toBe('UNSUPPORTED_VERSION');
    }
    expect(codeOf(() => parseSnpReport(encodeSnpReport({ signatureAlgo: 2 })))).toBe('UNSUPPORTED_ALGORITHM');
    expect(codeOf(() => parseSnpReport(encodeSnpReport({ signatureAlgo: 0 })))).toBe('UNSUPPORTED_ALGORITHM');
  });

  it('checks VMPL range and signer info', () => {
    expect(parseSnpReport(encodeSnpReport({ vmpl: 0xffffffff })).vmpl).toBe(0xffffffff);
    expect(codeOf(() => parseSnpReport(encodeSnpReport({ vmpl: 4 })))).toBe('EVIDENCE_MALFORMED');
    expect(parseSnpReport(encodeSnpReport({ signerInfo: { signingKey: 'none' } })).signerInfo.signingKey).toBe('none');
    const raw = encodeSnpReport();
    for (const signer of [2 << 2, 6 << 2, 1 << 5, 1 << 31]) {
      new DataView(raw.buffer).setUint32(SNP_OFFSETS.signerInfo, signer >>> 0, true);
      expect(codeOf(() => parseSnpReport(raw))).toBe('EVIDENCE_MALFORMED');
    }
  });

  it('rejects any non-zero reserved (MBZ) byte, version-dependent', () => {
    const mbz: Array<[number, number]> = [
      [0x04c, 0x050],
      [0x18b, 0x1a0],
      [0x1eb, 0x1ec],
      [0x1ef, 0x1f0],
      [0x208, 0x2a0],
      [0x2d0, 0x2e8],
      [0x318, 0x330],
      [0x330, 0x4a0],
      [0x188, 0x18b], // CPUID in v2
      [0x1f8, 0x208], // mitigation vectors before v5
    ];
    for (const [start, end] of mbz) {
      for (const off of [start, end - 1]) {
        const raw = encodeSnpReport();
        raw[off] = 1;
        expect(codeOf(() => parseSnpReport(raw)), `offset 0x${off.toString(16)}`).toBe('EVIDENCE_MALFORMED');
      }
    }
    // the same bytes are legal fields in later versions
    const v3 = encodeSnpReport({ version: 3 });
    v3[0x188] = 0x19;
    expect(parseSnpReport(v3).cpuid?.family).toBe(0x19);
    const v5 = encodeSnpReport({ version: 5 });
    v5[0x1f8] = 1;
    expect(parseSnpReport(v5).launchMitVector).toBe(1n);
  });

  it('encoder validates its arguments', () => {
    expect(codeOf(() => encodeSnpReport({ measurement: bytes(47, 0) }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => encodeSnpReport({ reportData: bytes(65, 0) }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => encodeSnpReport({ cpuid: { family: 1, model: 1, stepping: 1 } }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => encodeSnpReport({ launchMitVector: 1n }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => encodeSnpReport({ guestSvn: -1 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => encodeSnpReport({ policy: -1n }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => encodeSnpReport({ reportedTcb: { bootloader: 256 } }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => encodeSnpReport({ signature: bytes(95, 0) }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => withSnpSignature(bytes(10, 0), bytes(96, 0)))).toBe('INVALID_ARGUMENT');
  });

  it('snpSignatureP1363 refuses non-zero high bytes of R/S', () => {
    const raw = encodeSnpReport({ signature: bytes(96, 7) });
    expect(snpSignatureP1363(raw)).toBeDefined();
    raw[0x2a0 + 48] = 1;
    expect(snpSignatureP1363(raw)).toBeUndefined();
  });
});

interface SampleExpectation {
  file: string;
  /** 'bin' raw report, 'hex' uppercase hex text, 'hcl' Azure HCL report (SNP report at +0x20). */
  kind: 'bin' | 'hex' | 'hcl';
  vcek: { file: string; pem: boolean };
  version: number;
  policy: bigint;
  vmpl: number;
  signingKey: 'vcek' | 'vlek';
  reportedTcb: string;
  measurement: string;
  reportData: string;
  chipId: string;
  cpuid?: { family: number; model: number; stepping: number };
}

const ZERO64 = '00'.repeat(32);
const SAMPLES: SampleExpectation[] = [
  {
    file: 'amd/snp/gsg_milan_v2_report.bin',
    kind: 'bin',
    vcek: { file: 'amd/snp/gsg_milan_v2_vcek.der', pem: false },
    version: 2,
    policy: 0xb0000n,
    vmpl: 0,
    signingKey: 'vcek',
    reportedTcb: '0200000000000544',
    measurement: 'b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01',
    reportData: '0102030405' + '00'.repeat(59),
    chipId:
      '3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d',
  },
  {
    file: 'amd/snp/virtee_milan_v2_report.hex',
    kind: 'hex',
    vcek: { file: 'amd/snp/virtee_milan_v2_vcek.der', pem: false },
    version: 2,
    policy: 0x30000n,
    vmpl: 0,
    signingKey: 'vcek',
    reportedTcb: '0300000000000873',
    measurement: '7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f',
    reportData:
      'd447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd',
    chipId:
      'd49554ec717f4e5b0fe6b143bcf0405bd7ae304727edf46603f2a76aef6a3abc15d7af38db757039029f0efacfd08e244324884738c72b082e2f87a44d541eb6',
  },
  {
    file: 'amd/snp/trustee_milan_v2_report.bin',
    kind: 'bin',
    vcek: { file: 'amd/snp/trustee_milan_v2_vcek.der', pem: false },
    version: 2,
    policy: 0x3001fn,
    vmpl: 0,
    signingKey: 'vcek',
    reportedTcb: '0300000000000873',
    measurement: 'a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c',
    reportData: 'ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2' + ZERO64,
    chipId:
      'c38427a30d4c7af9d96f7a15b97269825a64cb76a2352ffd5d18115d89ad473f8e8c0bcd9a5d9286612bad4aadfb4426205a3b9e4fea82301135a170e477524e',
  },
  {
    file: 'amd/snp/trustee_milan_v3_vlek_report.bin',
    kind: 'bin',
    vcek: { file: 'amd/snp/trustee_milan_vlek.der', pem: false },
    version: 3,
    policy: 0x30000n,
    vmpl: 1,
    signingKey: 'vlek',
    reportedTcb: '04000000000018d9',
    measurement: '8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7bf0',
    reportData:
      '819770b7e6ea6df8dd8fd4dd146b073c0bf4f3ce5b0977ecac486e3a05ed1bd54e2a7ac1f5d1ca02e7d7d5ef9f73b8574fd9359e3a480d741a4478e8a7bc27ca',
    chipId: '00'.repeat(64),
    cpuid: { family: 0x19, model: 0x01, stepping: 0x01 },
  },
  {
    file: 'amd/snp/trustee_azure_milan_hcl_report.bin',
    kind: 'hcl',
    vcek: { file: 'amd/snp/trustee_azure_milan_vcek_chain.pem', pem: true },
    version: 2,
    policy: 0x3001fn,
    vmpl: 0,
    signingKey: 'vcek',
    reportedTcb: '0300000000000873',
    measurement: '9ac48fcac8a2d88aeeff8d427ad4f2be0e3917c748a18bdf52cc317e7fe20308b459d5ef1a12e0c22944eb386d17c315',
    reportData: 'b3fbad6514c83caeb0380882145e49f794229ef37c421b91fc47ff93556bafac' + ZERO64,
    chipId:
      '19752a447db501a32ade46428a46e92639bd3515dbb45e2e67bbcb0934ffcf1f3e3c004ccb4a99c9fa7e4ffb09da6b324ac58acedaf679f24ba7db5f838c6cca',
  },
  {
    file: 'amd/snp/trustee_azure_genoa_hcl_report.bin',
    kind: 'hcl',
    vcek: { file: 'amd/snp/trustee_azure_genoa_vcek.pem', pem: true },
    version: 3,
    policy: 0x3001fn,
    vmpl: 0,
    signingKey: 'vcek',
    reportedTcb: '0a00000000001754',
    measurement: 'f57dc09a507c6ecd82369bffb600f0003792f4d99bc26e985ec0c266fc34faf3706faf814c9e61065768a6ff917c89ae',
    reportData: 'b581f12e29a2d7d64e5e0b738d563879a78b51c644d0fa0cce02b48699f6bf5f' + ZERO64,
    chipId:
      '0506ffba875e939c2729d20c74eb72b4c5ba6bf7ea1faaa640141f12c6d64782fb487f68ce69dcd021e914cc0d9244327bc121f0242d6470903ad1d4aaea4ad1',
    cpuid: { family: 0x19, model: 0x11, stepping: 0x01 },
  },
];

function loadReport(s: SampleExpectation): Uint8Array {
  if (s.kind === 'hex') return unhex(sampleText(s.file).trim());
  const raw = sample(s.file);
  return s.kind === 'hcl' ? raw.subarray(0x20, 0x20 + SNP_REPORT_SIZE) : raw;
}

function loadVcek(s: SampleExpectation): X509Certificate {
  if (s.vcek.pem) {
    const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(sampleText(s.vcek.file));
    return new X509Certificate(first![0]);
  }
  // wrap DER as PEM (FORMATS.md pitfall 3)
  const b64 = Buffer.from(sample(s.vcek.file)).toString('base64').replace(/.{64}/g, '$&\n');
  return new X509Certificate(`-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`);
}

describe.skipIf(!samplesPresent)(`SEV-SNP parser on the published samples${samplesPresent ? '' : ` (skipped: ${samplesAbsentMessage})`}`, () => {
  for (const s of SAMPLES) {
    it(`${s.file}: fields match SOURCES.md`, () => {
      const r = parseSnpReport(loadReport(s));
      expect(r.version).toBe(s.version);
      expect(r.policy.raw).toBe(s.policy);
      expect(r.policy.debug).toBe((s.policy & (1n << 19n)) !== 0n);
      expect(r.vmpl).toBe(s.vmpl);
      expect(r.signerInfo.signingKey).toBe(s.signingKey);
      expect(hex(r.reportedTcb.raw)).toBe(s.reportedTcb);
      expect(hex(r.measurement)).toBe(s.measurement);
      expect(hex(r.reportData)).toBe(s.reportData);
      expect(hex(r.hostData)).toBe('00'.repeat(32));
      expect(hex(r.chipId)).toBe(s.chipId);
      expect(r.cpuid).toEqual(s.cpuid);
    });

    it(`${s.file}: signature extraction matches the real VCEK/VLEK signature (high-S accepted)`, () => {
      const report = loadReport(s);
      const key = loadVcek(s).publicKey;
      const sig = snpSignatureP1363(report)!;
      expect(verify('sha384', signedPart(report), { key, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
      const tampered = new Uint8Array(report);
      tampered[0x90] = (tampered[0x90]! ^ 1) & 0xff;
      expect(verify('sha384', signedPart(tampered), { key, dsaEncoding: 'ieee-p1363' }, sig)).toBe(false);
    });

    it(`${s.file}: verifyEvidence dispatches it to the SEV-SNP verifier`, () => {
      const evidence = s.kind === 'hcl' ? sample(s.file) : loadReport(s);
      const now = new Date('2025-06-01T00:00:00Z');
      // A bare report carries no VCEK/VLEK: without the endorsement it cannot verify.
      expect(codeOf(() => verifyEvidence(evidence, { now, trustedRoots: {} }))).toBe('COLLATERAL_MISSING');
      const result = verifyEvidence(evidence, { now, trustedRoots: {}, endorsements: [sample(s.vcek.file)] });
      expect(result.platform).toBe('sev-snp');
      expect(result.measurement).toBe(Buffer.from(parseSnpReport(s.kind === 'hcl' ? loadReport(s) : evidence).measurement).toString('hex'));
    });
  }

  it('the gsg Milan sample has the DEBUG policy bit set (0xb0000) and parses debug=true', () => {
    expect(parseSnpReport(sample('amd/snp/gsg_milan_v2_report.bin')).policy.debug).toBe(true);
  });

  it('decodes the Milan TCB of the gsg sample', () => {
    expect(parseSnpReport(sample('amd/snp/gsg_milan_v2_report.bin')).reportedTcb).toMatchObject({
      layout: 'milan-genoa',
      bootloader: 2,
      tee: 0,
      snp: 5,
      microcode: 0x44,
    });
  });
});
