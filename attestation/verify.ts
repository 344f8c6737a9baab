import type { VerificationCache } from './cache.js';
import { looksLikeEnvelope, parseEnvelope } from './envelope.js';
import { AttestationError, guarded } from './errors.js';
import { isBytes, sha256Hex } from './internal/bytes.js';
import { canonicalJson } from './internal/canonical.js';
import { isAttestationPlatform, type AttestationResult } from './result.js';
import { verifyMaaTokenSync } from './maa/verify.js';
import { isDcapEvidence } from './sgx/quote.js';
import { verifySgxQuote, type SgxCollateral } from './sgx/verify.js';
import type { SnpTrustAnchor } from './snp/certs.js';
import { decodeSnpEvidence, verifySnpReport } from './snp/verify.js';
import { VIRTUAL_PLATFORM, parseVirtualRoots, verifyVirtualWithRoots } from './virtual/evidence.js';

/**
 * verifyEvidence: one entry point for every evidence format; detects the format
 * and dispatches to its verifier. All verifiers return the same AttestationResult:
 * - virtual envelope → verifyVirtualEvidence (declared virtual roots);
 * - SEV-SNP report (raw, hex, Azure HCL) → verifySnpReport (embedded AMD roots);
 * - SGX / TDX DCAP quote (raw, hex, Open Enclave header, Azure JSON) → verifySgxQuote (embedded Intel root);
 * - Azure Attestation JWT (bare, {"token"}, SDK recording) → verifyMaaTokenSync (given key set).
 */

export type EvidenceFormat = 'envelope' | 'sev-snp-report' | 'azure-hcl-report' | 'sgx-quote' | 'jwt' | 'unknown';

function looksLikeJwt(evidence: Uint8Array): boolean {
  let i = 0;
  while (i < evidence.length && (evidence[i] === 0x20 || evidence[i] === 0x0a || evidence[i] === 0x0d || evidence[i] === 0x09)) i++;
  const head = String.fromCharCode(...evidence.subarray(i, i + 3));
  if (head === 'eyJ') return true;
  if (evidence[i] !== 0x7b) return false; // '{': a wrapper holding a token (Azure SDK recording, {"token": ...})
  const text = new TextDecoder().decode(evidence.subarray(0, Math.min(evidence.length, 1 << 20)));
  return /"(token|Token|attestationToken)"\s*:\s*"eyJ/.test(text) || /"ResponseBody"/.test(text);
}

/** Classifies evidence by its form. Never throws. */
export function detectEvidenceFormat(evidence: Uint8Array): EvidenceFormat {
  if (!isBytes(evidence) || evidence.length === 0) return 'unknown';
  // Before the envelope test, which takes any JSON object: a JSON wrapper holding a token is a token.
  if (looksLikeJwt(evidence)) return 'jwt';
  // Before the envelope test too: the Azure sample JSON wraps a quote in QuoteHex.
  if (isDcapEvidence(evidence)) return 'sgx-quote';
  if (looksLikeEnvelope(evidence)) return 'envelope';
  try {
    const decoded = decodeSnpEvidence(evidence);
    return decoded.form.includes('hcl') ? 'azure-hcl-report' : 'sev-snp-report';
  } catch {
    // not SEV-SNP
  }
  return 'unknown';
}

/** Trust anchors per platform. Absent: the embedded vendor roots (AMD, Intel); no virtual roots; no MAA key set. */
export interface TrustedRoots {
  /** SPKI PEMs of declared virtual roots (EC P-384). Absent or empty: no virtual evidence verifies (UNTRUSTED_ROOT). */
  readonly virtual?: readonly string[];
  /** Replaces the embedded AMD ARK/ASK/ASVK anchors (tests, private roots). */
  readonly sevSnp?: readonly SnpTrustAnchor[];
  /** Replaces the embedded Intel SGX Root CA key (SPKI PEMs). */
  readonly intel?: readonly string[];
}

export interface VerifyOptions {
  /** Evaluation time (certificate/collateral validity). Verifiers never read the clock. */
  readonly now: Date;
  readonly trustedRoots: TrustedRoots;
  /** SEV-SNP: the VCEK or VLEK certificate, with or without its ASK/ARK chain. */
  readonly endorsements?: readonly Uint8Array[];
  /** SGX: TCB info, QE identity and CRLs; with it, TCB status and revocation are evaluated. */
  readonly collateral?: SgxCollateral;
  /** Azure Attestation: the issuer's signing key set (JWKS object or text). */
  readonly jwks?: unknown;
  /** Optional caller-owned result cache (see VerificationCache). Without it nothing is cached. */
  readonly cache?: VerificationCache;
  /** Upper bound on evidence size, bytes. Default 1 MiB. */
  readonly maxEvidenceBytes?: number;
}

export const DEFAULT_MAX_EVIDENCE_BYTES = 1 << 20;

const digestOf = (value: unknown): string => {
  if (value === undefined) return '';
  if (isBytes(value)) return sha256Hex(value);
  if (typeof value === 'string') return sha256Hex(new TextEncoder().encode(value));
  return sha256Hex(new TextEncoder().encode(JSON.stringify(value)));
};

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
    // Cache key = evidence digest + a digest of EVERYTHING else that can change the
    // outcome: every trust anchor, the endorsements, the collateral, the key set.
    const cacheKey =
      options.cache === undefined
        ? undefined
        : sha256Hex(evidence) +
          '|' +
          sha256Hex(
            canonicalJson({
              virtual: virtualRoots.map((r) => r.keyId).sort(),
              sevSnp: trusted.sevSnp === undefined ? 'embedded' : digestOf(trusted.sevSnp),
              intel: trusted.intel === undefined ? 'embedded' : digestOf(trusted.intel),
              endorsements: (options.endorsements ?? []).map((e) => digestOf(e)),
              collateral: options.collateral === undefined ? '' : digestOf(options.collateral),
              jwks: digestOf(options.jwks),
            }),
          );
    if (cacheKey !== undefined) {
      const hit = options.cache!.get(cacheKey, now);
      if (hit !== undefined) return hit;
    }

    const result = dispatch(evidence, options, virtualRoots);
    if (cacheKey !== undefined) options.cache!.set(cacheKey, result);
    return result;
  });
}

function dispatch(evidence: Uint8Array, options: VerifyOptions, virtualRoots: ReturnType<typeof parseVirtualRoots>): AttestationResult {
  const { now, trustedRoots } = options;
  const format = detectEvidenceFormat(evidence);
  switch (format) {
    case 'envelope': {
      const { platform } = parseEnvelope(evidence);
      if (platform === VIRTUAL_PLATFORM) return verifyVirtualWithRoots(evidence, virtualRoots);
      if (isAttestationPlatform(platform)) {
        throw new AttestationError('UNSUPPORTED_FORMAT', `${platform} evidence comes in its own format, not in an envelope`, { platform });
      }
      throw new AttestationError('UNSUPPORTED_FORMAT', `unknown evidence envelope platform "${platform.slice(0, 64)}"`);
    }
    case 'sev-snp-report':
    case 'azure-hcl-report':
      return verifySnpReport(evidence, {
        now,
        ...(options.endorsements ? { endorsements: options.endorsements } : {}),
        ...(trustedRoots.sevSnp ? { trustedRoots: trustedRoots.sevSnp } : {}),
      });
    case 'sgx-quote':
      return verifySgxQuote(evidence, {
        now,
        ...(options.collateral ? { collateral: options.collateral } : {}),
        ...(trustedRoots.intel ? { trustedRoots: trustedRoots.intel } : {}),
      });
    case 'jwt':
      if (options.jwks === undefined) {
        throw new AttestationError('COLLATERAL_MISSING', "an Azure Attestation token verifies only with its issuer's signing key set (jwks)");
      }
      return verifyMaaTokenSync(evidence, { now, jwks: options.jwks });
    default:
      throw new AttestationError('UNSUPPORTED_FORMAT', 'evidence is not in any recognised format');
  }
}
