/**
 * Cloister attestation library (leaf: imports nothing else from the project).
 *
 * Flow for a relying party:
 *   const result = verifyEvidence(evidence, { now, trustedRoots });      // authenticity → AttestationResult
 *   checkReportData(result, reportDataFor({ publicKeys, chainId, nodeId, freshness })); // binding
 *   const decision = evaluatePolicy(result, policy, { now, evidenceTime }); // acceptance, all reasons
 */
export {
  ATTESTATION_ERROR_CODES,
  AttestationError,
  isAttestationError,
  type AttestationErrorCode,
} from './errors.js';
export {
  ATTESTATION_PLATFORMS,
  MEASUREMENT_BYTES,
  isAttestationPlatform,
  type AttestationPlatform,
  type AttestationResult,
  type SigningKeyKind,
  type SnpReportSummary,
  type TcbStatus,
  type TcbSummary,
} from './result.js';
export {
  SNP_OFFSETS,
  SNP_REPORT_SIZE,
  SNP_SIGNED_SIZE,
  SNP_SIG_ALGO_ECDSA_P384_SHA384,
  SNP_SUPPORTED_VERSIONS,
  SNP_VMPL_HOST,
  decodeSnpPolicy,
  decodeSnpTcb,
  encodeSnpPolicy,
  encodeSnpReport,
  encodeSnpTcb,
  parseSnpReport,
  signedPart,
  snpSignatureP1363,
  snpTcbLayoutFor,
  withSnpSignature,
  type SnpFirmwareVersion,
  type SnpGuestPolicy,
  type SnpGuestPolicyFlags,
  type SnpPlatformInfo,
  type SnpReport,
  type SnpReportFields,
  type SnpReportVersion,
  type SnpSignerInfo,
  type SnpSigningKey,
  type SnpTcbInput,
  type SnpTcbLayout,
  type SnpTcbVersion,
} from './snp/report.js';
export { snpReportSummary, snpTcbSummary } from './snp/summary.js';
export { MAX_ENVELOPE_BYTES, encodeEnvelope, parseEnvelope, type EvidenceEnvelope } from './envelope.js';
export * from './virtual/index.js';
export {
  REPORT_DATA_BYTES,
  REPORT_DATA_DOMAIN,
  checkReportData,
  reportDataFor,
  reportDataPreimage,
  type ReportDataInput,
} from './binding.js';
export {
  canonicalPolicy,
  enforcePolicy,
  evaluatePolicy,
  normalizePolicy,
  policyHash,
  type AttestationPolicy,
  type EvaluatePolicyOptions,
  type NormalizedPolicy,
  type PolicyDecision,
  type PolicyReason,
  type PolicyReasonCode,
} from './policy.js';
export { VerificationCache } from './cache.js';
export {
  DEFAULT_MAX_EVIDENCE_BYTES,
  detectEvidenceFormat,
  verifyEvidence,
  type EvidenceFormat,
  type TrustedRoots,
  type VerifyOptions,
} from './verify.js';
export {
  verifySnpReport,
  decodeSnpEvidence,
  amdRootKeyIds,
  AMD_SNP_TRUST_ANCHORS,
  AMD_ARK_SPKI_SHA256,
  parseHclReport,
  checkHclBinding,
  type SnpVerifyOptions,
  type SnpTrustAnchor,
  type SnpProduct,
} from './snp/index.js';
export * from './sgx/index.js';
export * from './maa/index.js';
export * from './token/index.js';
export { evaluationTime } from './time.js';
