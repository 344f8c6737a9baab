/** AMD SEV-SNP: report layout, evidence verification (VCEK/VLEK → ASK/ASVK → pinned ARK), Azure HCL wrapper. */
export * from './report.js';
export { snpReportSummary, snpTcbSummary } from './summary.js';
export {
  MAX_SNP_EVIDENCE_BYTES,
  amdRootKeyIds,
  decodeSnpEvidence,
  verifySnpReport,
  type DecodedSnpEvidence,
  type SnpEvidenceForm,
  type SnpVerifyOptions,
} from './verify.js';
export {
  AMD_OID,
  SNP_PRODUCTS,
  amdExtensions,
  parseAmdCertificates,
  isSnpProduct,
  type AmdCertExtensions,
  type ParsedCertificate,
  type SnpProduct,
  type SnpTrustAnchor,
} from './certs.js';
export {
  HCL_MAGIC,
  HCL_REPORT_OFFSET,
  HCL_RUNTIME_DATA_OFFSET,
  checkHclBinding,
  isHclReport,
  parseHclReport,
  type HclHashType,
  type HclReport,
} from './hcl.js';
export { AMD_ARK_SPKI_SHA256, AMD_SNP_TRUST_ANCHORS } from '../roots/amd.js';
