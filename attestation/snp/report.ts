import { AttestationError, guarded } from '../errors.js';
import { copyBytes, isAllZero, isBytes, reversed } from '../internal/bytes.js';

/**
 * AMD SEV-SNP ATTESTATION_REPORT (SEV-SNP ABI spec, table "ATTESTATION_REPORT
 * Structure"; offsets in /work/shared/attestation-samples/FORMATS.md section 1).
 * 1184 bytes, little-endian integers, versions 2, 3 and 5. Bytes 0x000..0x29F
 * are signed with ECDSA P-384/SHA-384; R and S are 72-byte little-endian fields.
 *
 * This module only parses and encodes; it verifies no signature.
 */

export const SNP_REPORT_SIZE = 0x4a0;
/** Length of the signed part, report[0x000 .. 0x29F]. */
export const SNP_SIGNED_SIZE = 0x2a0;
export const SNP_SUPPORTED_VERSIONS = [2, 3, 5] as const;
export type SnpReportVersion = (typeof SNP_SUPPORTED_VERSIONS)[number];
/** SIGNATURE_ALGO value for ECDSA P-384 with SHA-384 (the only defined value). */
export const SNP_SIG_ALGO_ECDSA_P384_SHA384 = 1;
/** VMPL value of a host-requested report. */
export const SNP_VMPL_HOST = 0xffffffff;

export const SNP_OFFSETS = Object.freeze({
  version: 0x000,
  guestSvn: 0x004,
  policy: 0x008,
  familyId: 0x010,
  imageId: 0x020,
  vmpl: 0x030,
  signatureAlgo: 0x034,
  currentTcb: 0x038,
  platformInfo: 0x040,
  signerInfo: 0x048,
  reserved1: 0x04c,
  reportData: 0x050,
  measurement: 0x090,
  hostData: 0x0c0,
  idKeyDigest: 0x0e0,
  authorKeyDigest: 0x110,
  reportId: 0x140,
  reportIdMa: 0x160,
  reportedTcb: 0x180,
  cpuid: 0x188,
  reserved2: 0x18b,
  chipId: 0x1a0,
  committedTcb: 0x1e0,
  currentVersion: 0x1e8,
  committedVersion: 0x1ec,
  launchTcb: 0x1f0,
  launchMitVector: 0x1f8,
  currentMitVector: 0x200,
  reserved3: 0x208,
  signatureR: 0x2a0,
  signatureS: 0x2e8,
  reserved4: 0x330,
});

const SIG_COMPONENT_FIELD = 72;
const SIG_COMPONENT_BYTES = 48;

export type SnpSigningKey = 'vcek' | 'vlek' | 'none';
/** TCB_VERSION byte layout: Milan/Genoa (BL, TEE, 4 reserved, SNP, UCODE) or Turin and later (FMC, BL, TEE, SNP, 3 reserved, UCODE). */
export type SnpTcbLayout = 'milan-genoa' | 'turin';

export interface SnpTcbVersion {
  /** The 8 bytes exactly as stored in the report. */
  readonly raw: Uint8Array;
  readonly layout: SnpTcbLayout;
  readonly bootloader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
  /** Turin layout only. */
  readonly fmc?: number;
}

export interface SnpGuestPolicy {
  readonly raw: bigint;
  readonly abiMinor: number;
  readonly abiMajor: number;
  readonly smt: boolean;
  readonly migrateMa: boolean;
  readonly debug: boolean;
  readonly singleSocket: boolean;
  readonly cxlAllow: boolean;
  readonly memAes256Xts: boolean;
  readonly raplDis: boolean;
  readonly ciphertextHiding: boolean;
  readonly pageSwapDisable: boolean;
}

export interface SnpPlatformInfo {
  readonly raw: bigint;
  readonly smtEnabled: boolean;
  readonly tsmeEnabled: boolean;
  readonly eccEnabled: boolean;
  readonly raplDisabled: boolean;
  readonly ciphertextHidingEnabled: boolean;
  readonly aliasCheckComplete: boolean;
  readonly tioEnabled: boolean;
}

export interface SnpSignerInfo {
  readonly raw: number;
  readonly authorKeyEn: boolean;
  readonly maskChipKey: boolean;
  readonly signingKey: SnpSigningKey;
}

export interface SnpFirmwareVersion {
  readonly build: number;
  readonly minor: number;
  readonly major: number;
}

export interface SnpReport {
  readonly version: SnpReportVersion;
  readonly guestSvn: number;
  readonly policy: SnpGuestPolicy;
  readonly familyId: Uint8Array;
  readonly imageId: Uint8Array;
  /** 0..3 for guest requests, 0xFFFFFFFF for host-requested reports. */
  readonly vmpl: number;
  readonly signatureAlgo: number;
  readonly currentTcb: SnpTcbVersion;
  readonly platformInfo: SnpPlatformInfo;
  readonly signerInfo: SnpSignerInfo;
  readonly reportData: Uint8Array;
  readonly measurement: Uint8Array;
  readonly hostData: Uint8Array;
  readonly idKeyDigest: Uint8Array;
  readonly authorKeyDigest: Uint8Array;
  readonly reportId: Uint8Array;
  readonly reportIdMa: Uint8Array;
  readonly reportedTcb: SnpTcbVersion;
  /** CPUID_FAM_ID / CPUID_MOD_ID / CPUID_STEP; version 3 and later only. */
  readonly cpuid?: { readonly family: number; readonly model: number; readonly stepping: number };
  readonly chipId: Uint8Array;
  readonly committedTcb: SnpTcbVersion;
  readonly currentVersion: SnpFirmwareVersion;
  readonly committedVersion: SnpFirmwareVersion;
  readonly launchTcb: SnpTcbVersion;
  /** Version 5 only (0n earlier). */
  readonly launchMitVector: bigint;
  readonly currentMitVector: bigint;
  /** The SIGNATURE field's R and S components exactly as stored: 72 bytes little-endian each. */
  readonly signature: { readonly r: Uint8Array; readonly s: Uint8Array };
  /** Copy of all 1184 report bytes. */
  readonly raw: Uint8Array;
}

// ----------------------------------------------------------------------------------------------
// parsing

function malformed(message: string, details?: Record<string, unknown>): AttestationError {
  return new AttestationError('EVIDENCE_MALFORMED', `SEV-SNP report: ${message}`, details);
}

/**
 * TCB layout for a report: Turin (CPUID family 0x1A) and later use the FMC-first
 * layout; Milan and Genoa (family 0x19) and every version-2 report (no CPUID
 * fields; Turin firmware emits version 3 or later) use the Milan/Genoa layout.
 * The SNP verifier may re-decode with the product taken from the VCEK certificate.
 */
export function snpTcbLayoutFor(cpuidFamily: number | undefined): SnpTcbLayout {
  return cpuidFamily !== undefined && cpuidFamily >= 0x1a ? 'turin' : 'milan-genoa';
}

export function decodeSnpTcb(raw: Uint8Array, layout: SnpTcbLayout): SnpTcbVersion {
  if (!isBytes(raw) || raw.length !== 8) {
    throw new AttestationError('INVALID_ARGUMENT', 'TCB_VERSION must be 8 bytes');
  }
  const b = copyBytes(raw);
  if (layout === 'turin') {
    return { raw: b, layout, fmc: b[0]!, bootloader: b[1]!, tee: b[2]!, snp: b[3]!, microcode: b[7]! };
  }
  return { raw: b, layout, bootloader: b[0]!, tee: b[1]!, snp: b[6]!, microcode: b[7]! };
}

export function decodeSnpPolicy(raw: bigint): SnpGuestPolicy {
  const bit = (n: number): boolean => ((raw >> BigInt(n)) & 1n) === 1n;
  return {
    raw,
    abiMinor: Number(raw & 0xffn),
    abiMajor: Number((raw >> 8n) & 0xffn),
    smt: bit(16),
    migrateMa: bit(18),
    debug: bit(19),
    singleSocket: bit(20),
    cxlAllow: bit(21),
    memAes256Xts: bit(22),
    raplDis: bit(23),
    ciphertextHiding: bit(24),
    pageSwapDisable: bit(25),
  };
}

function decodePlatformInfo(raw: bigint): SnpPlatformInfo {
  const bit = (n: number): boolean => ((raw >> BigInt(n)) & 1n) === 1n;
  return {
    raw,
    smtEnabled: bit(0),
    tsmeEnabled: bit(1),
    eccEnabled: bit(2),
    raplDisabled: bit(3),
    ciphertextHidingEnabled: bit(4),
    aliasCheckComplete: bit(5),
    tioEnabled: bit(7),
  };
}

const SIGNING_KEY_BY_CODE: Readonly<Record<number, SnpSigningKey>> = { 0: 'vcek', 1: 'vlek', 7: 'none' };
const SIGNING_KEY_CODE: Readonly<Record<SnpSigningKey, number>> = { vcek: 0, vlek: 1, none: 7 };

/**
 * Parses a 1184-byte SEV-SNP attestation report with strict checks:
 * exact length; VERSION in {2, 3, 5} (else UNSUPPORTED_VERSION); SIGNATURE_ALGO 1
 * (else UNSUPPORTED_ALGORITHM); VMPL 0..3 or 0xFFFFFFFF; signer-info SIGNING_KEY
 * 0 (VCEK), 1 (VLEK) or 7 (none) and its reserved bits zero; every reserved
 * (MBZ) range zero, including the version-dependent ones (CPUID bytes in v2,
 * mitigation vectors before v5), the unused high 24 bytes of R and S and the
 * rest of the signature area. Violations: EVIDENCE_MALFORMED.
 * Guest-policy bits are reported, not judged (new firmware defines new bits).
 */
export function parseSnpReport(bytes: Uint8Array): SnpReport {
  return guarded('parseSnpReport', () => parse(bytes));
}

function parse(bytes: Uint8Array): SnpReport {
  if (!isBytes(bytes)) throw malformed('evidence is not a byte array');
  if (bytes.length !== SNP_REPORT_SIZE) {
    throw malformed(`length ${bytes.length}, expected ${SNP_REPORT_SIZE}`, { length: bytes.length });
  }
  const raw = copyBytes(bytes);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const u32 = (off: number): number => view.getUint32(off, true);
  const u64 = (off: number): bigint => view.getBigUint64(off, true);
  const field = (off: number, len: number): Uint8Array => copyBytes(raw, off, off + len);
  const O = SNP_OFFSETS;

  const version = u32(O.version);
  if (!(SNP_SUPPORTED_VERSIONS as readonly number[]).includes(version)) {
    throw new AttestationError('UNSUPPORTED_VERSION', `SEV-SNP report version ${version} is not supported (2, 3, 5)`, {
      version,
    });
  }
  const signatureAlgo = u32(O.signatureAlgo);
  if (signatureAlgo !== SNP_SIG_ALGO_ECDSA_P384_SHA384) {
    throw new AttestationError('UNSUPPORTED_ALGORITHM', `SEV-SNP report SIGNATURE_ALGO ${signatureAlgo} (expected 1)`, {
      signatureAlgo,
    });
  }
  const vmpl = u32(O.vmpl);
  if (vmpl > 3 && vmpl !== SNP_VMPL_HOST) throw malformed(`VMPL ${vmpl} out of range`, { vmpl });

  const signerRaw = u32(O.signerInfo);
  if ((signerRaw & ~0x1f) !== 0) throw malformed('signer info reserved bits are set', { signerInfo: signerRaw });
  const signingKey = SIGNING_KEY_BY_CODE[(signerRaw >>> 2) & 0x7];
  if (signingKey === undefined) {
    throw malformed(`signer info SIGNING_KEY ${(signerRaw >>> 2) & 0x7} is reserved`, { signerInfo: signerRaw });
  }

  const mbz: Array<[number, number, string]> = [
    [O.reserved1, O.reportData, 'reserved 0x04C'],
    [O.reserved2, O.chipId, 'reserved 0x18B'],
    [O.currentVersion + 3, O.committedVersion, 'reserved 0x1EB'],
    [O.committedVersion + 3, O.launchTcb, 'reserved 0x1EF'],
    [O.reserved3, O.signatureR, 'reserved 0x208'],
    [O.signatureR + SIG_COMPONENT_BYTES, O.signatureS, 'signature R high bytes'],
    [O.signatureS + SIG_COMPONENT_BYTES, O.reserved4, 'signature S high bytes'],
    [O.reserved4, SNP_REPORT_SIZE, 'reserved signature area'],
  ];
  if (version < 3) mbz.push([O.cpuid, O.reserved2, 'CPUID fields (version 2)']);
  if (version < 5) mbz.push([O.launchMitVector, O.reserved3, 'mitigation vectors (before version 5)']);
  for (const [start, end, name] of mbz) {
    if (!isAllZero(raw, start, end)) throw malformed(`${name} must be zero`, { offset: start });
  }

  const cpuid =
    version >= 3 ? { family: raw[O.cpuid]!, model: raw[O.cpuid + 1]!, stepping: raw[O.cpuid + 2]! } : undefined;
  const layout = snpTcbLayoutFor(cpuid?.family);
  const tcb = (off: number): SnpTcbVersion => decodeSnpTcb(raw.subarray(off, off + 8), layout);
  const fw = (off: number): SnpFirmwareVersion => ({ build: raw[off]!, minor: raw[off + 1]!, major: raw[off + 2]! });

  const report: SnpReport = {
    version: version as SnpReportVersion,
    guestSvn: u32(O.guestSvn),
    policy: decodeSnpPolicy(u64(O.policy)),
    familyId: field(O.familyId, 16),
    imageId: field(O.imageId, 16),
    vmpl,
    signatureAlgo,
    currentTcb: tcb(O.currentTcb),
    platformInfo: decodePlatformInfo(u64(O.platformInfo)),
    signerInfo: {
      raw: signerRaw,
      authorKeyEn: (signerRaw & 1) === 1,
      maskChipKey: (signerRaw & 2) === 2,
      signingKey,
    },
    reportData: field(O.reportData, 64),
    measurement: field(O.measurement, 48),
    hostData: field(O.hostData, 32),
    idKeyDigest: field(O.idKeyDigest, 48),
    authorKeyDigest: field(O.authorKeyDigest, 48),
    reportId: field(O.reportId, 32),
    reportIdMa: field(O.reportIdMa, 32),
    reportedTcb: tcb(O.reportedTcb),
    chipId: field(O.chipId, 64),
    committedTcb: tcb(O.committedTcb),
    currentVersion: fw(O.currentVersion),
    committedVersion: fw(O.committedVersion),
    launchTcb: tcb(O.launchTcb),
    launchMitVector: u64(O.launchMitVector),
    currentMitVector: u64(O.currentMitVector),
    signature: { r: field(O.signatureR, SIG_COMPONENT_FIELD), s: field(O.signatureS, SIG_COMPONENT_FIELD) },
    raw,
  };
  return cpuid === undefined ? report : { ...report, cpuid };
}

/** The signed bytes, report[0x000 .. 0x29F] (672 bytes), as a copy. Accepts a parsed report or raw report bytes. */
export function signedPart(report: SnpReport | Uint8Array): Uint8Array {
  return guarded('signedPart', () => {
    const raw = isBytes(report) ? report : (report as SnpReport | undefined)?.raw;
    if (!isBytes(raw) || raw.length !== SNP_REPORT_SIZE) {
      throw malformed(`length ${isBytes(raw) ? raw.length : 'n/a'}, expected ${SNP_REPORT_SIZE}`);
    }
    return copyBytes(raw, 0, SNP_SIGNED_SIZE);
  });
}

/**
 * The report signature as IEEE P1363 r‖s (96 bytes, big-endian each), the form
 * node:crypto `verify(..., { dsaEncoding: 'ieee-p1363' })` takes. Returns
 * undefined when the unused high 24 bytes of the 72-byte R or S field are not
 * zero (not a P-384 signature). Accepts a parsed report or raw report bytes.
 */
export function snpSignatureP1363(report: SnpReport | Uint8Array): Uint8Array | undefined {
  return guarded('snpSignatureP1363', () => {
    const raw = isBytes(report) ? report : (report as SnpReport | undefined)?.raw;
    if (!isBytes(raw) || raw.length !== SNP_REPORT_SIZE) {
      throw malformed(`length ${isBytes(raw) ? raw.length : 'n/a'}, expected ${SNP_REPORT_SIZE}`);
    }
    const O = SNP_OFFSETS;
    if (!isAllZero(raw, O.signatureR + SIG_COMPONENT_BYTES, O.signatureS)) return undefined;
    if (!isAllZero(raw, O.signatureS + SIG_COMPONENT_BYTES, O.reserved4)) return undefined;
    const out = new Uint8Array(2 * SIG_COMPONENT_BYTES);
    out.set(reversed(raw.subarray(O.signatureR, O.signatureR + SIG_COMPONENT_BYTES)), 0);
    out.set(reversed(raw.subarray(O.signatureS, O.signatureS + SIG_COMPONENT_BYTES)), SIG_COMPONENT_BYTES);
    return out;
  });
}

// ----------------------------------------------------------------------------------------------
// encoding

/** TCB as components (layout defaults to 'turin' when `fmc` is given, else 'milan-genoa') or as the 8 raw bytes. */
export type SnpTcbInput =
  | Uint8Array
  | {
      readonly bootloader?: number;
      readonly tee?: number;
      readonly snp?: number;
      readonly microcode?: number;
      readonly fmc?: number;
      readonly layout?: SnpTcbLayout;
    };

export interface SnpGuestPolicyFlags {
  readonly abiMinor?: number;
  readonly abiMajor?: number;
  readonly smt?: boolean;
  readonly migrateMa?: boolean;
  readonly debug?: boolean;
  readonly singleSocket?: boolean;
  readonly cxlAllow?: boolean;
  readonly memAes256Xts?: boolean;
  readonly raplDis?: boolean;
  readonly ciphertextHiding?: boolean;
  readonly pageSwapDisable?: boolean;
}

/** Every field optional; defaults are zero except version 2, policy 0x30000 (SMT allowed, reserved bit 17 set), SIGNATURE_ALGO 1. */
export interface SnpReportFields {
  readonly version?: SnpReportVersion;
  readonly guestSvn?: number;
  /** Raw u64 or flags (bit 17, reserved-must-be-one, is always set for flags). */
  readonly policy?: bigint | SnpGuestPolicyFlags;
  readonly familyId?: Uint8Array;
  readonly imageId?: Uint8Array;
  readonly vmpl?: number;
  readonly signatureAlgo?: number;
  readonly currentTcb?: SnpTcbInput;
  readonly reportedTcb?: SnpTcbInput;
  readonly committedTcb?: SnpTcbInput;
  readonly launchTcb?: SnpTcbInput;
  readonly platformInfo?: bigint;
  readonly signerInfo?: { readonly authorKeyEn?: boolean; readonly maskChipKey?: boolean; readonly signingKey?: SnpSigningKey };
  readonly reportData?: Uint8Array;
  readonly measurement?: Uint8Array;
  readonly hostData?: Uint8Array;
  readonly idKeyDigest?: Uint8Array;
  readonly authorKeyDigest?: Uint8Array;
  readonly reportId?: Uint8Array;
  readonly reportIdMa?: Uint8Array;
  /** Version 3 and later only. */
  readonly cpuid?: { readonly family: number; readonly model: number; readonly stepping: number };
  readonly chipId?: Uint8Array;
  readonly currentVersion?: SnpFirmwareVersion;
  readonly committedVersion?: SnpFirmwareVersion;
  /** Version 5 only. */
  readonly launchMitVector?: bigint;
  readonly currentMitVector?: bigint;
  /** IEEE P1363 r‖s, 96 bytes big-endian; stored little-endian in the 72-byte R and S fields. Absent: zero. */
  readonly signature?: Uint8Array;
}

function badArg(message: string): AttestationError {
  return new AttestationError('INVALID_ARGUMENT', `encodeSnpReport: ${message}`);
}

export function encodeSnpPolicy(flags: SnpGuestPolicyFlags): bigint {
  const byte = (v: number | undefined, name: string): bigint => {
    const n = v ?? 0;
    if (!Number.isInteger(n) || n < 0 || n > 0xff) throw badArg(`policy ${name} must be a byte`);
    return BigInt(n);
  };
  let p = byte(flags.abiMinor, 'abiMinor') | (byte(flags.abiMajor, 'abiMajor') << 8n) | (1n << 17n);
  const bits: Array<[boolean | undefined, number]> = [
    [flags.smt, 16],
    [flags.migrateMa, 18],
    [flags.debug, 19],
    [flags.singleSocket, 20],
    [flags.cxlAllow, 21],
    [flags.memAes256Xts, 22],
    [flags.raplDis, 23],
    [flags.ciphertextHiding, 24],
    [flags.pageSwapDisable, 25],
  ];
  for (const [on, n] of bits) if (on === true) p |= 1n << BigInt(n);
  return p;
}

export function encodeSnpTcb(tcb: SnpTcbInput): Uint8Array {
  if (isBytes(tcb)) {
    if (tcb.length !== 8) throw badArg('raw TCB must be 8 bytes');
    return copyBytes(tcb);
  }
  const out = new Uint8Array(8);
  const v = (n: number | undefined, name: string): number => {
    const x = n ?? 0;
    if (!Number.isInteger(x) || x < 0 || x > 0xff) throw badArg(`TCB ${name} must be 0..255`);
    return x;
  };
  const layout = tcb.layout ?? (tcb.fmc !== undefined ? 'turin' : 'milan-genoa');
  if (layout === 'turin') {
    out[0] = v(tcb.fmc, 'fmc');
    out[1] = v(tcb.bootloader, 'bootloader');
    out[2] = v(tcb.tee, 'tee');
    out[3] = v(tcb.snp, 'snp');
  } else {
    if (tcb.fmc !== undefined) throw badArg('fmc exists only in the Turin TCB layout');
    out[0] = v(tcb.bootloader, 'bootloader');
    out[1] = v(tcb.tee, 'tee');
    out[6] = v(tcb.snp, 'snp');
  }
  out[7] = v(tcb.microcode, 'microcode');
  return out;
}

/**
 * Builds a report in the real 1184-byte layout (for the virtual platform and for
 * tests). Field lengths and ranges are checked (INVALID_ARGUMENT); the output
 * always satisfies parseSnpReport's structural checks when version, signature
 * algorithm and VMPL are legal (tests may set illegal ones on purpose).
 */
export function encodeSnpReport(fields: SnpReportFields = {}): Uint8Array {
  return guarded('encodeSnpReport', () => encode(fields));
}

function encode(f: SnpReportFields): Uint8Array {
  if (f === null || typeof f !== 'object') throw badArg('fields must be an object');
  const out = new Uint8Array(SNP_REPORT_SIZE);
  const view = new DataView(out.buffer);
  const O = SNP_OFFSETS;
  const u32 = (off: number, v: number | undefined, name: string, dflt = 0): void => {
    const x = v ?? dflt;
    if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw badArg(`${name} must be a u32`);
    view.setUint32(off, x, true);
  };
  const u64 = (off: number, v: bigint | undefined, name: string): void => {
    const x = v ?? 0n;
    if (typeof x !== 'bigint' || x < 0n || x > 0xffffffffffffffffn) throw badArg(`${name} must be a u64 bigint`);
    view.setBigUint64(off, x, true);
  };
  const bytes = (off: number, v: Uint8Array | undefined, len: number, name: string): void => {
    if (v === undefined) return;
    if (!isBytes(v) || v.length !== len) throw badArg(`${name} must be ${len} bytes`);
    out.set(v, off);
  };
  const byte = (off: number, v: number, name: string): void => {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw badArg(`${name} must be a byte`);
    out[off] = v;
  };

  const version = f.version ?? 2;
  u32(O.version, version, 'version');
  u32(O.guestSvn, f.guestSvn, 'guestSvn');
  const policy = f.policy === undefined ? 0x30000n : typeof f.policy === 'bigint' ? f.policy : encodeSnpPolicy(f.policy);
  u64(O.policy, policy, 'policy');
  bytes(O.familyId, f.familyId, 16, 'familyId');
  bytes(O.imageId, f.imageId, 16, 'imageId');
  u32(O.vmpl, f.vmpl, 'vmpl');
  u32(O.signatureAlgo, f.signatureAlgo, 'signatureAlgo', SNP_SIG_ALGO_ECDSA_P384_SHA384);
  if (f.currentTcb !== undefined) out.set(encodeSnpTcb(f.currentTcb), O.currentTcb);
  u64(O.platformInfo, f.platformInfo, 'platformInfo');
  const si = f.signerInfo ?? {};
  const keyCode = SIGNING_KEY_CODE[si.signingKey ?? 'vcek'];
  if (keyCode === undefined) throw badArg('signerInfo.signingKey must be vcek, vlek or none');
  view.setUint32(O.signerInfo, (si.authorKeyEn ? 1 : 0) | (si.maskChipKey ? 2 : 0) | (keyCode << 2), true);
  bytes(O.reportData, f.reportData, 64, 'reportData');
  bytes(O.measurement, f.measurement, 48, 'measurement');
  bytes(O.hostData, f.hostData, 32, 'hostData');
  bytes(O.idKeyDigest, f.idKeyDigest, 48, 'idKeyDigest');
  bytes(O.authorKeyDigest, f.authorKeyDigest, 48, 'authorKeyDigest');
  bytes(O.reportId, f.reportId, 32, 'reportId');
  bytes(O.reportIdMa, f.reportIdMa, 32, 'reportIdMa');
  if (f.reportedTcb !== undefined) out.set(encodeSnpTcb(f.reportedTcb), O.reportedTcb);
  if (f.cpuid !== undefined) {
    if (version < 3) throw badArg('CPUID fields exist from report version 3');
    byte(O.cpuid, f.cpuid.family, 'cpuid.family');
    byte(O.cpuid + 1, f.cpuid.model, 'cpuid.model');
    byte(O.cpuid + 2, f.cpuid.stepping, 'cpuid.stepping');
  }
  bytes(O.chipId, f.chipId, 64, 'chipId');
  if (f.committedTcb !== undefined) out.set(encodeSnpTcb(f.committedTcb), O.committedTcb);
  for (const [off, v, name] of [
    [O.currentVersion, f.currentVersion, 'currentVersion'],
    [O.committedVersion, f.committedVersion, 'committedVersion'],
  ] as const) {
    if (v === undefined) continue;
    byte(off, v.build, `${name}.build`);
    byte(off + 1, v.minor, `${name}.minor`);
    byte(off + 2, v.major, `${name}.major`);
  }
  if (f.launchTcb !== undefined) out.set(encodeSnpTcb(f.launchTcb), O.launchTcb);
  if ((f.launchMitVector !== undefined || f.currentMitVector !== undefined) && version < 5) {
    throw badArg('mitigation vectors exist from report version 5');
  }
  u64(O.launchMitVector, f.launchMitVector, 'launchMitVector');
  u64(O.currentMitVector, f.currentMitVector, 'currentMitVector');
  if (f.signature !== undefined) writeSignature(out, f.signature);
  return out;
}

function writeSignature(report: Uint8Array, p1363: Uint8Array): void {
  if (!isBytes(p1363) || p1363.length !== 2 * SIG_COMPONENT_BYTES) {
    throw badArg(`signature must be ${2 * SIG_COMPONENT_BYTES} bytes (P1363 r‖s)`);
  }
  const O = SNP_OFFSETS;
  report.fill(0, O.signatureR, SNP_REPORT_SIZE);
  report.set(reversed(p1363.subarray(0, SIG_COMPONENT_BYTES)), O.signatureR);
  report.set(reversed(p1363.subarray(SIG_COMPONENT_BYTES)), O.signatureS);
}

/** Returns a copy of `report` (1184 bytes) with its SIGNATURE field set from a P1363 r‖s signature. */
export function withSnpSignature(report: Uint8Array, p1363: Uint8Array): Uint8Array {
  return guarded('withSnpSignature', () => {
    if (!isBytes(report) || report.length !== SNP_REPORT_SIZE) throw badArg(`report must be ${SNP_REPORT_SIZE} bytes`);
    const out = copyBytes(report);
    writeSignature(out, p1363);
    return out;
  });
}
