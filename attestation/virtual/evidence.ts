import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { encodeEnvelope, looksLikeEnvelope, parseEnvelope } from '../envelope.js';
import { AttestationError, guarded } from '../errors.js';
import {
  bytesEqual,
  deepFreeze,
  fromBase64Strict,
  isAllZero,
  isBytes,
  sha256Hex,
  sha384,
  toBase64,
  toHex,
} from '../internal/bytes.js';
import { parsePinnedEcKey, type PinnedKey } from '../internal/keys.js';
import type { AttestationResult } from '../result.js';
import {
  SNP_REPORT_SIZE,
  encodeSnpReport,
  parseSnpReport,
  signedPart,
  snpSignatureP1363,
  withSnpSignature,
  type SnpReport,
} from '../snp/report.js';
import { snpReportSummary, snpTcbSummary } from '../snp/summary.js';

/**
 * The virtual platform (development and CI only).
 *
 * A "virtual vendor root" is an ECDSA P-384 key pair generated locally by the
 * launcher; its private key never leaves the launcher and never appears in
 * evidence. Virtual evidence is:
 *
 *   envelope (canonical JSON, UTF-8):
 *     {"platform":"virtual","report":"<base64 of a 1184-byte SEV-SNP report>","root":"<base64 SPKI DER of the virtual root public key>"}
 *
 *   report, in the real SEV-SNP ATTESTATION_REPORT layout (version 2):
 *     MEASUREMENT  = the 48-byte enclave measurement (SHA-384 of the enclave program, see virtualMeasurement)
 *     REPORT_DATA  = the 64 bytes the enclave chose (see reportDataFor)
 *     HOST_DATA    = optional 32 bytes (zero by default)
 *     FAMILY_ID    = ASCII "cloister-virtual" (the virtual marker, inside the signed part)
 *     POLICY       = 0x30000 (SMT, reserved bit 17) | DEBUG bit 19 when debug
 *     SIGNER_INFO  = SIGNING_KEY 0 (layout-legal) with MASK_CHIP_KEY = 1; CHIP_ID all zero (there is no chip)
 *     TCB fields   = the given (or zero) bootloader/tee/snp/microcode SPLs in the Milan/Genoa layout
 *     SIGNATURE    = ECDSA P-384/SHA-384 over report[0x000..0x29F] by the virtual root,
 *                    r and s little-endian in the 72-byte fields exactly like real SNP.
 *
 * How virtual evidence is told apart from real SNP: (1) the envelope with
 * platform "virtual" (a real report is raw bytes; a future SNP envelope says
 * "sev-snp"); (2) the signed FAMILY_ID marker. Neither is what makes it safe:
 * trust comes only from the signature verifying under a pinned virtual root,
 * and the policy accepts platform 'virtual' only with `allowVirtual: true`.
 * A virtual report can never pass the SEV-SNP verifier (no AMD VCEK signs it)
 * and a real report cannot pass this verifier (no virtual root signs it).
 *
 * The `root` member is an unsigned hint that names the key to verify with:
 * a root not byte-equal (SPKI DER) to a trusted root gives UNTRUSTED_ROOT; a
 * pinned root under which the signature fails gives SIGNATURE_INVALID. Editing
 * the hint can change which of the two errors is reported, never the outcome.
 */

export const VIRTUAL_PLATFORM = 'virtual';
/** FAMILY_ID of every virtual report, as ASCII (exactly 16 bytes). */
export const VIRTUAL_FAMILY_ID = 'cloister-virtual';
const FAMILY_ID_BYTES = new Uint8Array(Buffer.from(VIRTUAL_FAMILY_ID, 'ascii'));
export const VIRTUAL_REPORT_VERSION = 2;
export const VIRTUAL_ROOT_CURVE = 'secp384r1';
const CURVE = VIRTUAL_ROOT_CURVE;

/** The virtual platform's enclave measurement: SHA-384 of the enclave program bytes (48 bytes). */
export function virtualMeasurement(program: Uint8Array): Uint8Array {
  return guarded('virtualMeasurement', () => {
    if (!isBytes(program)) throw new AttestationError('INVALID_ARGUMENT', 'program must be bytes');
    return sha384(program);
  });
}

export interface VirtualTcb {
  readonly bootloader?: number;
  readonly tee?: number;
  readonly snp?: number;
  readonly microcode?: number;
}

export interface CreateVirtualEvidenceOptions {
  /** PKCS#8 PEM of the virtual root (from generateVirtualRoot). */
  readonly rootPrivateKeyPem: string;
  /** 48 bytes: SHA-384 of the enclave program. */
  readonly measurement: Uint8Array;
  /** 64 bytes chosen by the enclave. */
  readonly reportData: Uint8Array;
  readonly hostData?: Uint8Array;
  readonly debug?: boolean;
  /** SPL values written to the current, reported, committed and launch TCB (default all zero). */
  readonly tcb?: VirtualTcb;
  readonly guestSvn?: number;
  /** 32 bytes (default zero). */
  readonly reportId?: Uint8Array;
}

function badArg(message: string): AttestationError {
  return new AttestationError('INVALID_ARGUMENT', `createVirtualEvidence: ${message}`);
}

function loadPrivateKey(pem: unknown): KeyObject {
  if (typeof pem !== 'string' || !pem.includes('PRIVATE KEY')) throw badArg('rootPrivateKeyPem is not a private key PEM');
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new AttestationError('INVALID_ARGUMENT', 'createVirtualEvidence: rootPrivateKeyPem cannot be parsed', undefined, {
      cause: err,
    });
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== CURVE) {
    throw badArg('rootPrivateKeyPem is not an EC P-384 key');
  }
  return key;
}

/** Creates virtual evidence (the envelope bytes). Throws AttestationError('INVALID_ARGUMENT') for bad options. */
export function createVirtualEvidence(options: CreateVirtualEvidenceOptions): Uint8Array {
  return guarded('createVirtualEvidence', () => {
    if (options === null || typeof options !== 'object') throw badArg('options must be an object');
    const key = loadPrivateKey(options.rootPrivateKeyPem);
    if (!isBytes(options.measurement) || options.measurement.length !== 48) throw badArg('measurement must be 48 bytes');
    if (!isBytes(options.reportData) || options.reportData.length !== 64) throw badArg('reportData must be 64 bytes');
    if (options.hostData !== undefined && (!isBytes(options.hostData) || options.hostData.length !== 32)) {
      throw badArg('hostData must be 32 bytes');
    }
    if (options.debug !== undefined && typeof options.debug !== 'boolean') throw badArg('debug must be a boolean');
    const tcb = { ...(options.tcb ?? {}), layout: 'milan-genoa' as const };
    const unsigned = encodeSnpReport({
      version: VIRTUAL_REPORT_VERSION,
      guestSvn: options.guestSvn ?? 0,
      policy: { smt: true, debug: options.debug === true },
      familyId: FAMILY_ID_BYTES,
      vmpl: 0,
      currentTcb: tcb,
      reportedTcb: tcb,
      committedTcb: tcb,
      launchTcb: tcb,
      signerInfo: { signingKey: 'vcek', maskChipKey: true },
      reportData: options.reportData,
      measurement: options.measurement,
      ...(options.hostData !== undefined ? { hostData: options.hostData } : {}),
      ...(options.reportId !== undefined ? { reportId: options.reportId } : {}),
    });
    const signature = new Uint8Array(sign('sha384', signedPart(unsigned), { key, dsaEncoding: 'ieee-p1363' }));
    const report = withSnpSignature(unsigned, signature);
    const rootDer = new Uint8Array(createPublicKey(key).export({ type: 'spki', format: 'der' }));
    return encodeEnvelope({ platform: VIRTUAL_PLATFORM, report: toBase64(report), root: toBase64(rootDer) });
  });
}

export interface VerifyVirtualOptions {
  /** SPKI PEMs of the virtual roots the consortium declared. Compared as SPKI DER bytes. */
  readonly trustedRoots: readonly string[];
  /** Evaluation time. Virtual evidence has no certificates, so nothing here expires; validated and kept for a uniform verifier signature. */
  readonly now: Date;
}

/** The decoded envelope of virtual evidence (no signature checked). */
export interface VirtualEnvelope {
  readonly report: Uint8Array;
  readonly rootSpkiDer: Uint8Array;
}

export function isVirtualEvidence(evidence: Uint8Array): boolean {
  if (!looksLikeEnvelope(evidence)) return false;
  try {
    return parseEnvelope(evidence).platform === VIRTUAL_PLATFORM;
  } catch {
    return false;
  }
}

export function parseVirtualEnvelope(evidence: Uint8Array): VirtualEnvelope {
  return guarded('parseVirtualEnvelope', () => {
    const env = parseEnvelope(evidence);
    if (env.platform !== VIRTUAL_PLATFORM) {
      throw new AttestationError('UNSUPPORTED_FORMAT', `envelope platform "${env.platform}" is not "virtual"`);
    }
    const keys = Object.keys(env.fields).sort().join(',');
    if (keys !== 'platform,report,root') {
      throw new AttestationError('EVIDENCE_MALFORMED', `virtual envelope members must be platform, report, root (got ${keys})`);
    }
    const report = fromBase64Strict(env.fields['report'] ?? '');
    const rootSpkiDer = fromBase64Strict(env.fields['root'] ?? '');
    if (report === undefined || rootSpkiDer === undefined) {
      throw new AttestationError('EVIDENCE_MALFORMED', 'virtual envelope: report/root is not canonical base64');
    }
    if (report.length !== SNP_REPORT_SIZE) {
      throw new AttestationError('EVIDENCE_MALFORMED', `virtual envelope: report is ${report.length} bytes, expected ${SNP_REPORT_SIZE}`);
    }
    if (rootSpkiDer.length === 0 || rootSpkiDer.length > 1024) {
      throw new AttestationError('EVIDENCE_MALFORMED', 'virtual envelope: root is not a public key');
    }
    return { report, rootSpkiDer };
  });
}

function checkNow(now: unknown): void {
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) {
    throw new AttestationError('INVALID_ARGUMENT', 'now must be a valid Date');
  }
}

/** Parses trusted virtual roots (SPKI PEM, EC P-384). INVALID_ARGUMENT for anything else. */
export function parseVirtualRoots(trustedRoots: unknown): PinnedKey[] {
  if (!Array.isArray(trustedRoots)) throw new AttestationError('INVALID_ARGUMENT', 'trustedRoots must be an array of SPKI PEM strings');
  return trustedRoots.map((pem: unknown, i) => parsePinnedEcKey(pem, CURVE, `trusted virtual root #${i}`));
}

/**
 * Verifies virtual evidence. Order: envelope → root pinned (UNTRUSTED_ROOT) →
 * ECDSA P-384/SHA-384 signature over report[0x000..0x29F] (SIGNATURE_INVALID) →
 * strict report parse → virtual marker checks (EVIDENCE_MALFORMED).
 * The signature is checked before the report is interpreted, so any changed
 * byte in the signed part is SIGNATURE_INVALID. Throws only AttestationError.
 */
export function verifyVirtualEvidence(evidence: Uint8Array, options: VerifyVirtualOptions): AttestationResult {
  return guarded('verifyVirtualEvidence', () => {
    if (options === null || typeof options !== 'object') throw new AttestationError('INVALID_ARGUMENT', 'options must be an object');
    checkNow(options.now);
    const roots = parseVirtualRoots(options.trustedRoots);
    return verifyWithRoots(evidence, roots);
  });
}

/** Internal entry for verifyEvidence (roots already parsed). */
export function verifyVirtualWithRoots(evidence: Uint8Array, roots: readonly PinnedKey[]): AttestationResult {
  return guarded('verifyVirtualEvidence', () => verifyWithRoots(evidence, roots));
}

function verifyWithRoots(evidence: Uint8Array, roots: readonly PinnedKey[]): AttestationResult {
  const { report: reportBytes, rootSpkiDer } = parseVirtualEnvelope(evidence);
  const root = roots.find((r) => bytesEqual(r.spkiDer, rootSpkiDer));
  if (root === undefined) {
    throw new AttestationError('UNTRUSTED_ROOT', 'virtual evidence is signed by a root that is not a trusted virtual root', {
      rootKeyId: sha256Hex(rootSpkiDer),
    });
  }
  const signature = snpSignatureP1363(reportBytes);
  const ok =
    signature !== undefined &&
    verify('sha384', signedPart(reportBytes), { key: root.key, dsaEncoding: 'ieee-p1363' }, signature);
  if (!ok) {
    throw new AttestationError('SIGNATURE_INVALID', 'virtual report signature does not verify under its virtual root', {
      rootKeyId: root.keyId,
    });
  }
  const report = parseSnpReport(reportBytes);
  checkVirtualMarkers(report);
  return deepFreeze(resultFor(report, evidence, root.keyId));
}

function checkVirtualMarkers(report: SnpReport): void {
  const bad = (what: string): never => {
    throw new AttestationError('EVIDENCE_MALFORMED', `virtual report: ${what}`);
  };
  if (!bytesEqual(report.familyId, FAMILY_ID_BYTES)) bad('FAMILY_ID is not the virtual marker');
  if (report.signerInfo.signingKey !== 'vcek' || !report.signerInfo.maskChipKey) bad('signer info must be SIGNING_KEY 0 with MASK_CHIP_KEY');
  if (!isAllZero(report.chipId)) bad('CHIP_ID must be zero');
}

function resultFor(report: SnpReport, evidence: Uint8Array, rootKeyId: string): AttestationResult {
  return {
    platform: 'virtual',
    measurement: toHex(report.measurement),
    reportData: toHex(report.reportData),
    hostData: toHex(report.hostData),
    debug: report.policy.debug,
    tcb: snpTcbSummary(report),
    signingKey: 'virtual-root',
    rootKeyId,
    evidenceDigest: sha256Hex(evidence),
    snp: snpReportSummary(report),
  };
}
