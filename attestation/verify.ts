import type { VerificationCache } from './cache.js';
import { looksLikeEnvelope, parseEnvelope } from './envelope.js';
import { AttestationError, guarded } from './errors.js';
import { isBytes, sha256Hex, toHex } from './internal/bytes.js';
import { canonicalJson } from './internal/canonical.js';
import { isAttestationPlatform, type AttestationResult } from './result.js';
import { SNP_REPORT_SIZE, parseSnpReport } from './snp/report.js';
import { VIRTUAL_PLATFORM, parseVirtualRoots, verifyVirtualWithRoots } from './virtual/evidence.js';

/**
 * verifyEvidence: one entry point for every evidence format; detects the format
 * and dispatches to its verifier. All verifiers return the same AttestationResult.
 *
 * Status of this version:
 * - virtual envelope  → verified (verifyVirtualEvidence).
 * - raw SEV-SNP report, Azure HCL report, SGX/TDX DCAP quote, JWT → recognised,
 *   parsed where a parser exists (malformed input gets its precise error), then
 *   UNSUPPORTED_PLATFORM: their chain verification arrives with the next issue.
 *   They are never accepted meanwhile.
 */

export type EvidenceFormat = 'envelope' | 'sev-snp-report' | 'azure-hcl-report' | 'sgx-quote' | 'jwt' | 'unknown';

/** Classifies evidence bytes by their leading bytes / length. Never throws. */
export function detectEvidenceFormat(evidence: Uint8Array): EvidenceFormat {
  if (!isBytes(evidence) || evidence.length === 0) return 'unknown';
  if (looksLikeEnvelope(evidence)) return 'envelope';
  const ascii = (n: number): string => String.fromCharCode(...evidence.subarray(0, n));
  if (evidence.length >= 4 && ascii(4) === 'HCLA') return 'azure-hcl-report';
  if (evidence.length >= 3 && ascii(3) === 'eyJ') return 'jwt';
  if (evidence.length >= 48) {
    const u16 = (off: number): number => evidence[off]! | (evidence[off + 1]! << 8);
    const version = u16(0);
    const attKeyType = u16(2);
    if (version >= 3 && version <= 5 && (attKeyType === 2 || attKeyType === 3)) return 'sgx-quote';
  }
  if (evidence.length === SNP_REPORT_SIZE) return 'sev-snp-report';
  return 'unknown';
}

/** Trust anchors per platform. Later issues add AMD ARKs, the Intel SGX root and pinned MAA issuers. */
export interface TrustedRoots {
  /** SPKI PEMs of declared virtual roots (EC P-384). Absent or empty: no virtual evidence verifies (UNTRUSTED_ROOT). */
  readonly virtual?: readonly string[];
}

export interface VerifyOptions {
  /** Evaluation time (certificate/collateral validity). Verifiers never read the clock. */
  readonly now: Date;
  readonly trustedRoots: TrustedRoots;
  /** Optional caller-owned result cache (see VerificationCache). Without it nothing is cached. */
  readonly cache?: VerificationCache;
  /** Upper bound on evidence size, bytes. Default 1 MiB. */
  readonly maxEvidenceBytes?: number;
}

export const DEFAULT_MAX_EVIDENCE_BYTES = 1 << 20;

function unsupported(platform: string, message: string, details: Record<string, unknown> = {}): AttestationError {
  return new AttestationError('UNSUPPORTED_PLATFORM', message, { platform, ...details });
}

/**
 * Verifies evidence of any supported format against the trusted roots and
 * returns the common result. Throws only AttestationError. The result still has
 * to pass evaluatePolicy and checkReportData.
 */
export function verifyEvidence(evidence: Uint8Array, options: VerifyOptions): AttestationResult {
  return guarded('verifyEvidence', () => {
    if (options === null || typeof options !== 'object') throw new AttestationError('INVALID_ARGUMENT', 'options must be an object');
    const now = options.now;
    if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new AttestationError('INVALID_ARGUMENT', 'now must be a valid Date');
    const trusted = options.trustedRoots;
    if (trusted === null || typeof trusted !== 'object') throw new AttestationError('INVALID_ARGUMENT', 'trustedRoots must be an object');
    const max = options.maxEvidenceBytes ?? DEFAULT_MAX_EVIDENCE_BYTES;
    if (!Number.isSafeInteger(max) || max < 1) throw new AttestationError('INVALID_ARGUMENT', 'maxEvidenceBytes must be a positive integer');
    if (!isBytes(evidence)) throw new AttestationError('EVIDENCE_MALFORMED', 'evidence is not a byte array');
    if (evidence.length > max) throw new AttestationError('EVIDENCE_MALFORMED', `evidence is larger than ${max} bytes`);

    const virtualRoots = parseVirtualRoots(trusted.virtual ?? []);
    // Cache key = evidence digest + fingerprint of EVERY trust anchor that can influence
    // the outcome. A new anchor kind (AMD ARKs, Intel root, MAA issuer) must be added here.
    const cacheKey =
      options.cache === undefined
        ? undefined
        : sha256Hex(evidence) + '|' + sha256Hex(canonicalJson({ virtual: virtualRoots.map((r) => r.keyId).sort() }));
    if (cacheKey !== undefined) {
      const hit = options.cache!.get(cacheKey, now);
      if (hit !== undefined) return hit;
    }

    const result = dispatch(evidence, virtualRoots);
    if (cacheKey !== undefined) options.cache!.set(cacheKey, result);
    return result;
  });
}

function dispatch(evidence: Uint8Array, virtualRoots: ReturnType<typeof parseVirtualRoots>): AttestationResult {
  const format = detectEvidenceFormat(evidence);
  switch (format) {
    case 'envelope': {
      const { platform } = parseEnvelope(evidence);
      if (platform === VIRTUAL_PLATFORM) return verifyVirtualWithRoots(evidence, virtualRoots);
      if (isAttestationPlatform(platform)) {
        throw unsupported(platform, `${platform} evidence envelopes are not supported yet`);
      }
      throw new AttestationError('UNSUPPORTED_FORMAT', `unknown evidence envelope platform "${platform.slice(0, 64)}"`);
    }
    case 'sev-snp-report': {
      const report = parseSnpReport(evidence);
      throw unsupported(
        'sev-snp',
        `SEV-SNP report (version ${report.version}, signed by ${report.signerInfo.signingKey}) recognised, ` +
          'but VCEK/VLEK chain verification to AMD roots is not implemented yet; real SEV-SNP evidence is never accepted by this version',
        { version: report.version, signingKey: report.signerInfo.signingKey, measurement: toHex(report.measurement) },
      );
    }
    case 'azure-hcl-report':
      throw unsupported('sev-snp', 'Azure HCL report (SEV-SNP) recognised, but its verification is not implemented yet');
    case 'sgx-quote':
      throw unsupported('sgx', 'Intel DCAP quote recognised, but its verification is not implemented yet');
    case 'jwt':
      throw unsupported('maa-sgx', 'JWT (Azure Attestation token) recognised, but its verification is not implemented yet');
    default:
      throw new AttestationError('UNSUPPORTED_FORMAT', 'evidence is not in any recognised format');
  }
}
