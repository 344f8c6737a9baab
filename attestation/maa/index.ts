/**
 * Azure Attestation (MAA) tokens: verification against the issuer's signing key
 * set, mapped to the common AttestationResult (platforms 'maa-sgx', 'maa-sev-snp').
 */
export {
  MAA_MAX_TOKEN_BYTES,
  decodeMaaTokenUnverified,
  extractMaaToken,
  verifyMaaToken,
  verifyMaaTokenSync,
  type MaaAttestationResult,
  type UnverifiedMaaToken,
  type VerifyMaaOptions,
} from './verify.js';
export {
  mapMaaClaims,
  type MaaAttestationType,
  type MaaSevSnpClaims,
  type MaaSgxClaims,
  type MaaTokenSummary,
  type MappedMaaClaims,
} from './claims.js';
export { MAA_MAX_JWKS_BYTES, findMaaSigningKey, type MaaSigningKey } from './jwks.js';
