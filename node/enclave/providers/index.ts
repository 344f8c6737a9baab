/**
 * Evidence providers for nodes on real hardware, behind the same TeePlatform
 * interface as the virtual platform (node/enclave/platform.ts). See README.md.
 */
export {
  DEFAULT_TSM_REPORT_DIR,
  SEV_GUEST_PROVIDER,
  SevSnpConfigfsPlatform,
  TSM_PRIVLEVEL_MAX,
  type SevSnpConfigfsOptions,
  type SnpPlatformReport,
} from './sev-snp-configfs.js';
export { DEFAULT_GRAMINE_ATTESTATION_DIR, GramineSgxPlatform, type GramineSgxOptions, type SgxPlatformReport } from './sgx-gramine.js';
export { EvidenceProviderError, PROVIDER_ERROR_CODES, type ProviderErrorCode } from './errors.js';
export { nodeProviderFs, type ProviderFs } from './fs.js';
export { SNP_CERT_GUIDS, encodeSnpCertTable, parseSnpCertTable, type SnpCertKind, type SnpCertificate } from './snp-cert-table.js';
export { SGX_QUOTE_MIN_BYTES, parseSgxQuote, type SgxQuoteSummary } from './sgx-quote.js';
