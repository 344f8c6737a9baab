/** Intel SGX / TDX DCAP quote verification (see attestation/README.md, "Intel SGX DCAP"). */
export {
  verifySgxQuote,
  verifySgxQuoteDetailed,
  type CollateralItemState,
  type DcapQuoteDetails,
  type DcapVerification,
  type SgxCollateral,
  type SgxVerifyOptions,
} from './verify.js';
export {
  ATT_KEY_TYPE_ECDSA_P256,
  CERT_DATA_PCK_CHAIN,
  CERT_DATA_QE_REPORT,
  DCAP_HEADER_SIZE,
  INTEL_QE_VENDOR_ID,
  MAX_DCAP_INPUT_BYTES,
  SGX_REPORT_BODY_SIZE,
  SGX_REPORT_OFFSETS,
  TD10_REPORT_BODY_SIZE,
  TD_REPORT_OFFSETS,
  TEE_TYPE_SGX,
  TEE_TYPE_TDX,
  isDcapEvidence,
  parseDcapQuote,
  unwrapDcapInput,
  type AzureQuoteJson,
  type DcapQuote,
  type SgxReportBody,
  type TdReportBody,
  type UnwrappedQuote,
} from './quote.js';
export { OID_SGX_EXTENSIONS, type PckExtensions, type SgxType } from './pck.js';
export { INTEL_SGX_ROOT_CA_PEM, INTEL_SGX_ROOT_KEY_ID, INTEL_SGX_ROOT_PUBLIC_KEY_PEM } from '../roots/intel.js';
